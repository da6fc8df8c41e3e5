"""``rtm audit``: checks of a run for accountable use.

* :mod:`rtm.audit.population`: a population layer apportioned to cells by area;
* :mod:`rtm.audit.exposure`: exposure disparity and the parity-constrained alternative;
* :mod:`rtm.audit.accuracy`: accuracy parity by sub-area;
* :mod:`rtm.audit.series`: the feedback monitor and drift across a batch folder;
* :mod:`rtm.audit.workflow`: :func:`audit`, which runs them and writes ``audit.json``.
"""

from rtm.audit.series import Thresholds
from rtm.audit.workflow import audit

__all__ = ["Thresholds", "audit"]
