"""rtm: Risk Terrain Modeling in Python."""

from rtm._version import __version__

__all__ = ["__version__"]
