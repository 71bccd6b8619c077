"""The dataset service (``maxlake serve``): an aiohttp app for model teams.

:func:`build_app` assembles the routes of the modules in :data:`ROUTE_MODULES`; every dataset
request is token-checked (:mod:`lake.access`) and audited in ``ops/audit``.
"""

from maxlake.server.app import ROUTE_MODULES, build_app, run
from maxlake.server.context import CONTEXT, ServiceContext

__all__ = ["CONTEXT", "ROUTE_MODULES", "ServiceContext", "build_app", "run"]
