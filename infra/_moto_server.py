"""``python -m infra._moto_server HOST PORT``: moto's S3 server with one request at a time.

moto checks ``If-None-Match``/``If-Match`` and then stores the object in two steps; with its
threaded server, two concurrent conditional puts can both pass the check, which real S3 never
allows (delta-rs would lose a commit). A lock around the application makes each request atomic;
connections are still served by threads, so a client holding a keep-alive connection does not
block the others.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class _Serialized:
    """A WSGI app that runs ``app`` for one request at a time."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


def main() -> None:
    """Serve on ``sys.argv[1]:sys.argv[2]`` until terminated."""
    host, port = sys.argv[1], int(sys.argv[2])
    app = _Serialized(DomainDispatcherApplication(create_backend_app))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
