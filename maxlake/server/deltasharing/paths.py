"""Where the protocol is served: the endpoint prefix and the signed files below it."""

__all__ = ["FILES", "PREFIX"]

PREFIX = "/delta-sharing"
FILES = f"{PREFIX}/files"
