"""maxlake: an event-driven manufacturing data lake.

The names users import, in one place::

    from maxlake import PlantProducer, Settings, load

    settings = Settings()  # MAXLAKE_* environment
    with PlantProducer(settings) as producer:
        producer.send(event)  # a dict following the event schema of its kind
    frame = load("predictive-maintenance", split="train")  # a published dataset version

Everything is imported on first use (``maxlake --help`` and components that only need
:mod:`maxlake.settings` or :mod:`maxlake.errors` do not pay for Kafka, Delta or Polars).
The packages below (``streams``, ``lake``, ``schemas``...) hold the rest; ``maxlake.cli`` is
the command line, which no component imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from maxlake.lazy import lazy_exports
from maxlake.version import __version__

if TYPE_CHECKING:
    from lake.curation import iter_batches, list_datasets, load, pull
    from maxlake.errors import ConfigError, MaxlakeError, TerminalError, TransientError
    from maxlake.settings import Settings
    from schemas import EventKind
    from streams import PlantProducer

__all__ = [
    "ConfigError",
    "EventKind",
    "MaxlakeError",
    "PlantProducer",
    "Settings",
    "TerminalError",
    "TransientError",
    "__version__",
    "iter_batches",
    "list_datasets",
    "load",
    "pull",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "lake.curation": ("iter_batches", "list_datasets", "load", "pull"),
        "maxlake.errors": ("ConfigError", "MaxlakeError", "TerminalError", "TransientError"),
        "maxlake.settings": ("Settings",),
        "schemas": ("EventKind",),
        "streams": ("PlantProducer",),
    },
)
