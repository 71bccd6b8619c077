"""maxlake: an event-driven manufacturing data lake.

This package holds the foundation every component may import (``settings``, ``errors``)
and the command-line entry point (``cli``), which no component imports.
"""

__version__ = "0.1.0"
