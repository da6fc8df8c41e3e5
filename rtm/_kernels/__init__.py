"""Every numba kernel of rtm, and nothing else.

Kernels take contiguous arrays and scalars only and read no module globals; the
typed public functions that validate inputs and call them live in the modules
named after the pipeline stage (``rtm.layers``, ``rtm.selection``).
"""
