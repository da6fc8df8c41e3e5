"""Accountable use of a run: what it rests on, said plainly.

* :mod:`rtm.accountability.provenance`: outcome provenance, the police.uk categories that
  mostly record police activity (shipped in ``police_generated.toml``);
* :mod:`rtm.accountability.model_card`: ``model_card.md`` and its section of report.html;
* :mod:`rtm.accountability.transparency`: ``transparency_record.md`` in the structure of
  the UK Algorithmic Transparency Recording Standard.

The checks on a finished run (exposure disparity, accuracy parity, feedback, drift) are
``rtm audit`` (:mod:`rtm.audit`).
"""
