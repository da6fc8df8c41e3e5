"""The operationalizations: one module each, found by :mod:`rtm.layers.registry`.

A module here defines ``OPERATIONALIZATION``, an instance of
:class:`~rtm.layers.operationalizations.base.Operationalization`. Adding a new way to
turn a factor into candidate variables (say, "count of features within d") is one new
module here and its tests; nothing else changes (docs/design.md).
"""
