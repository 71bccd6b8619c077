"""The one Great Expectations runtime of the process, shared by every validation.

Ingest validation (:mod:`quality`, suites from suite files) and the output checks of curated
datasets (:mod:`lake.curation.output_checks`) both run here; it sits in ``lake`` because
``lake`` may not import ``quality`` (packages depend downward) while ``quality`` may import
``lake``.

GX takes seconds to import and its context must not be rebuilt or have names re-added
(GX #10269), so on first use this module sets ``GX_ANALYTICS_ENABLED=false`` (unless the
environment already sets it), imports GX, turns progress bars off and builds one ephemeral
context, pandas data source, dataframe asset and whole-dataframe batch definition. Two
libraries GX imports at start only for expectations it may never run (:data:`DEFERRED`: Altair
and SciPy's statistics, ~80 MiB resident and seconds of start-up) are loaded on their first use
instead. Suites are plain ``ExpectationSuite`` objects that are not registered with the
context, so any number of them coexist. Validations are serialised by one lock (GX is not
thread-safe).

While :func:`validate` runs, :mod:`lake._gx_domains` gives GX's row-level metrics their domain
records on the domain's columns only, once per domain, builds each metric id once per
content and hands GX the metric graph it built for an earlier validation of the same suite
content (verdicts unchanged; a GX release that changes a patched function leaves GX
unpatched, with one warning).

Each expectation carries its name in ``meta["maxlake_name"]`` (:data:`NAME_KEY`); results are
mapped back by that name because GX does not return them in suite order.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lake import _gx_domains
from maxlake.errors import ConfigError

__all__ = ["DEFERRED", "NAME_KEY", "GxRuntime", "named_suite", "runtime", "validate"]

NAME_KEY = "maxlake_name"
_DATASOURCE, _ASSET, _BATCH = "maxlake", "rows", "whole_batch"


@dataclass(frozen=True, slots=True)
class GxRuntime:
    """The process-wide GX objects.

    Attributes:
        gx: the ``great_expectations`` module.
        expectations: the ``great_expectations.expectations`` module (expectation classes).
        context: the ephemeral data context (do not add names to it).
        batch_definition: whole-dataframe batch definition of the pandas asset.
        lock: serialises validations.
        validator: GX's validator class (``great_expectations.validator.v1_validator``), the
            one ``Batch.validate`` builds; :func:`validate` builds it directly so that a frame
            is loaded as a batch once per validation, not twice.
    """

    gx: Any
    expectations: Any
    context: Any
    batch_definition: Any
    lock: threading.Lock
    validator: Any


_CREATE_LOCK = threading.Lock()

DEFERRED = ("altair", "scipy.stats")
"""Modules GX imports at start that only some expectations use: Altair for the charts of
``ExpectColumnKlDivergenceToBeLessThan``, SciPy's statistics for that expectation and the
Kolmogorov-Smirnov metrics. Imported on first use of one of their attributes; none of the
bundled suites uses them (a worker would otherwise hold ~80 MiB more: 61 MiB SciPy, 33 MiB
Altair with its schema libraries, measured alone)."""


class _Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module not imported yet; its first attribute read
    imports the module and every read is answered by it from then on."""

    _load_lock = threading.Lock()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module(), attr)

    def _module(self) -> types.ModuleType:
        loaded: types.ModuleType | None = self.__dict__.get("_loaded")
        if loaded is None:
            with _Deferred._load_lock:
                loaded = self.__dict__.get("_loaded")
                if loaded is None:
                    if sys.modules.get(self.__name__) is self:
                        del sys.modules[self.__name__]
                    loaded = importlib.import_module(self.__name__)
                    self.__dict__["_loaded"] = loaded
        return loaded


def _defer(names: tuple[str, ...]) -> None:
    """Put a :class:`_Deferred` in ``sys.modules`` for each of ``names`` not imported yet
    (and installed: a missing module fails where it is used, as without deferring)."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        module = _Deferred(name)
        module.__spec__ = spec
        module.__loader__ = spec.loader
        module.__file__ = spec.origin
        module.__package__ = spec.parent if spec.submodule_search_locations is None else name
        if spec.submodule_search_locations is not None:
            module.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = module


def runtime() -> GxRuntime:
    """The process-wide GX runtime, created on the first call (imports GX: seconds).

    Raises:
        ConfigError: great-expectations is not installed.
    """
    with _CREATE_LOCK:
        return _create_runtime()


@functools.cache
def _create_runtime() -> GxRuntime:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    _defer(DEFERRED)
    try:
        import great_expectations as gx  # noqa: PLC0415 - lazy: GX takes seconds to import
        import great_expectations.expectations as gxe  # noqa: PLC0415 - lazy: GX takes seconds to import
        from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: PLC0415 - lazy: GX takes seconds to import
        from great_expectations.validator.v1_validator import Validator  # noqa: PLC0415 - lazy: GX takes seconds to import
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError(
            "great-expectations is not installed: pip install 'great-expectations>=1.24'"
        ) from exc
    _skip_decimal_scan_of_typed_arrays()
    _memoize_configurations_while_validating()
    _memoize_expectations_while_validating()
    _skip_frame_fingerprints()
    _gx_domains.install()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(_DATASOURCE).add_dataframe_asset(_ASSET)
    batch_definition = asset.add_batch_definition_whole_dataframe(_BATCH)
    return GxRuntime(gx, gxe, context, batch_definition, threading.Lock(), Validator)


def _skip_decimal_scan_of_typed_arrays() -> None:
    """Make GX's "does this array hold ``decimal.Decimal``s" check O(1) on typed arrays.

    GX's column mean, sum and standard deviation metrics first look for ``Decimal`` objects
    with a Python ``any(isinstance(v, Decimal) for v in array)`` over every row: ~90 ms per
    217,000-row telemetry batch, ~1.5 µs per event, for the telemetry suite's one mean check.
    An array of a NumPy numeric (or any non-object) dtype cannot hold ``Decimal`` objects, so
    the answer there is False without looking; object arrays are still scanned by GX.
    """
    import great_expectations.util as gx_util  # noqa: PLC0415 - lazy: GX takes seconds to import

    scan: Any = gx_util.does_ndarray_contain_decimal_dtype
    if getattr(scan, "_maxlake_typed_shortcut", False):
        return

    def does_ndarray_contain_decimal_dtype(data: Any) -> bool:
        if getattr(getattr(data, "dtype", None), "kind", "O") != "O":
            return False
        return bool(scan(data))

    does_ndarray_contain_decimal_dtype._maxlake_typed_shortcut = True  # type: ignore[attr-defined]
    setattr(gx_util, "does_ndarray_contain_decimal_dtype", does_ndarray_contain_decimal_dtype)  # noqa: B010 - mypy: GX declares a TypeGuard


def _skip_frame_fingerprints() -> None:
    """Stop GX hashing every frame it loads as a batch.

    GX's pandas engine puts ``pd.util.hash_pandas_object`` of the whole frame (plus an MD5 of
    it) into the batch markers of every frame under 1 GB (``HASH_THRESHOLD``): ~11 ms per
    217,000-row telemetry frame, a cost per row. The markers only reach the suite-level result's
    ``meta``, which :func:`validate` drops; verdicts do not depend on them. A threshold of 0
    skips the hash (no frame is smaller than 0 bytes)."""
    from great_expectations.execution_engine import pandas_execution_engine  # noqa: PLC0415 - lazy: GX takes seconds to import

    pandas_execution_engine.HASH_THRESHOLD = 0


_VALIDATING = threading.local()
"""``configs``: id -> (expectation, its configuration) and ``expectations``: id ->
(configuration, its expectation), set while this thread runs :func:`validate`."""


def _memoize_configurations_while_validating() -> None:
    """Build each expectation's ``configuration`` once per :func:`validate` call, not per read.

    GX's ``Expectation.configuration`` is a property that serialises the expectation with
    pydantic and builds a new ``ExpectationConfiguration`` on every read, and one validation
    of the telemetry suite reads it ~960 times while building its metric graph: ~40 of the
    ~100 ms that every GX call costs regardless of its rows. While :func:`validate` runs (under
    the runtime lock, on this thread) the first read of each expectation object is kept and
    returned again; the expectations GX builds for a run are not changed during it. Outside
    :func:`validate` the property is GX's own.
    """
    from great_expectations.expectations.expectation import Expectation  # noqa: PLC0415 - lazy: GX takes seconds to import

    prop: Any = Expectation.__dict__["configuration"]
    if getattr(prop.fget, "_maxlake_memo", False):
        return
    build = prop.fget

    def configuration(self: Any) -> Any:
        configs: dict[int, tuple[Any, Any]] | None = getattr(_VALIDATING, "configs", None)
        if configs is None:
            return build(self)
        held = configs.get(id(self))
        if held is None or held[0] is not self:
            held = configs[id(self)] = (self, build(self))
        return held[1]

    configuration._maxlake_memo = True  # type: ignore[attr-defined]
    setattr(Expectation, "configuration", property(configuration))  # noqa: B010 - mypy: a property of a GX class


def _memoize_expectations_while_validating() -> None:
    """Build the expectation of each configuration once per :func:`validate` call, not per call
    of ``ExpectationConfiguration.to_domain_obj``.

    GX's ``get_metric_kwargs`` turns the configuration back into a new expectation (a pydantic
    model validated from the kwargs, value sets included) for every metric it configures, ~74
    times per validation of the telemetry suite, and each new object then serialises its own
    ``configuration`` again (the memo of
    :func:`_memoize_configurations_while_validating` is per object). While :func:`validate`
    runs, the first expectation built from a configuration object is returned again for the
    same object; GX only reads these expectations during a run. Outside :func:`validate` the
    method is GX's own.
    """
    from great_expectations.expectations.expectation_configuration import (  # noqa: PLC0415 - lazy: GX takes seconds to import
        ExpectationConfiguration,
    )

    build = ExpectationConfiguration.to_domain_obj
    if getattr(build, "_maxlake_memo", False):
        return

    def to_domain_obj(self: Any) -> Any:
        built: dict[int, tuple[Any, Any]] | None = getattr(_VALIDATING, "expectations", None)
        if built is None:
            return build(self)
        held = built.get(id(self))
        if held is None or held[0] is not self:
            held = built[id(self)] = (self, build(self))
        return held[1]

    to_domain_obj._maxlake_memo = True  # type: ignore[attr-defined]
    setattr(ExpectationConfiguration, "to_domain_obj", to_domain_obj)  # noqa: B010 - mypy: a method of a GX class


def named_suite(
    name: str, expectations: Iterable[tuple[str, Any]], *, meta: Mapping[str, Any] | None = None
) -> Any:
    """A GX ``ExpectationSuite`` called ``name`` holding ``(entry name, expectation)`` pairs in
    order, each expectation's ``meta`` extended with :data:`NAME_KEY` = its entry name."""
    suite = runtime().gx.ExpectationSuite(name=name, meta=dict(meta or {}))
    for entry, expectation in expectations:
        expectation.meta = {**(expectation.meta or {}), NAME_KEY: entry}
        suite.add_expectation(expectation)
    return suite


def validate(suite: Any, frame: pd.DataFrame, *, result_format: Mapping[str, Any]) -> list[Any]:
    """Validate ``frame`` against ``suite`` on the shared batch definition, under the lock.

    ``result_format`` is passed at run time because GX ignores one set on expectations
    (GX #10316). Returns GX's per-expectation results (``ExpectationValidationResult``, in GX's
    order; each ``expectation_config.meta`` holds :data:`NAME_KEY`). GX's own exceptions pass
    through: the caller wraps them in its package's error.
    """
    rt = runtime()
    with rt.lock:
        _VALIDATING.configs = {}
        _VALIDATING.expectations = {}
        narrow = _gx_domains.narrowable(suite, result_format)
        try:
            with _gx_domains.narrowed(domains=narrow, graphs=narrow):
                result = rt.validator(
                    batch_definition=rt.batch_definition,
                    batch_parameters={"dataframe": frame},
                    result_format=dict(result_format),
                ).validate_expectation_suite(suite)
        finally:
            _VALIDATING.configs = None
            _VALIDATING.expectations = None
    return list(result.results)
