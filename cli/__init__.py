"""The rtm command line (installed as the ``rtm_cli`` package)."""
