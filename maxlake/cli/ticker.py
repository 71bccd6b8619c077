"""Seconds spent on a long step, printed while it runs: no stretch of the demo is silent.

A step that reports only when it is done (a Polars job, the output checks, reading the lake
for the report) gets a ticker: on a terminal one line counting the seconds in place, in a log
a line every ``every_s`` seconds. The step's own code is untouched: the ticker is a thread
that prints while the main thread works (Polars and Delta release the GIL; Python code gives
it up every few milliseconds).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Ticker", "ticking"]


class Ticker:
    """Prints ``    <what> ... N s`` while a step runs; one step at a time.

    Args:
        every_s: seconds between two lines in a log (a terminal's line changes every second).
        live: update one line in place (default: whether ``out`` is a terminal).
        out: where to print (default ``sys.stdout``).
        clock: monotonic seconds.
    """

    def __init__(
        self,
        *,
        every_s: float = 10.0,
        live: bool | None = None,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out or sys.stdout
        self._live = self._out.isatty() if live is None else live
        self._every_s = 1.0 if self._live else every_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._printed = False

    def start(self, what: str) -> None:
        """Start counting the seconds of ``what`` (stops a step still counting)."""
        self.stop()
        self._stop.clear()
        self._printed = False
        started = self._clock()
        self._thread = threading.Thread(
            target=self._run, args=(what, started), name="maxlake-ticker", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop counting; on a terminal, end the counting line."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()
        if self._live and self._printed:
            self._out.write("\n")
            self._out.flush()

    def _run(self, what: str, started: float) -> None:
        while not self._stop.wait(self._every_s):
            line = f"    {what} ... {self._clock() - started:,.0f} s"
            self._out.write(f"\r{line}" if self._live else f"{line}\n")
            self._out.flush()
            self._printed = True


@contextmanager
def ticking(what: str, ticker: Ticker | None = None) -> Iterator[None]:
    """Count the seconds of ``what`` while the block runs."""
    tick = ticker or Ticker()
    tick.start(what)
    try:
        yield
    finally:
        tick.stop()
