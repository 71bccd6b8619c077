"""The version of maxlake (one place; ``maxlake.__version__`` re-exports it)."""

__version__ = "0.1.0"
