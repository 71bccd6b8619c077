"""Build-time enforcement: only rows a contract releases, de-identified, reach a feature job.

The build runner hands the gate its pinned, spec-filtered source frames and the registry's
machines *before* the job runs (:meth:`SharingGate.apply`); the job only ever sees what the
contracts release. Per tenant:

1. the tenant's contract in force for the spec's purpose is looked up; a tenant without one
   contributes nothing (its rows and its registry machines are dropped);
2. only the contract's event kinds, event-time range and telemetry tags are kept;
3. rare machine types are suppressed: when fewer tenants than the group size contribute rows
   of a machine type, the rows of that type of every tenant whose contract sets
   ``suppress_rare`` are dropped, because such rows would single the company out;
4. identifiers are replaced by the contract's keyed pseudonyms and free text, Kafka topics
   and confidential columns are emptied (:func:`lake.sharing.deid.deidentify`).

After the job, :meth:`SharedInputs.noisy_features` adds each contract's ``feature_noise`` to
the float features of its rows (traced by :meth:`SharedInputs.owners`), and
:meth:`SharingGate.check_output` scans every text of the splits and extra files
(:mod:`lake.sharing.leaks`) for a raw identifier the set must not show
(:func:`raw_identifiers`), and stops the build if one is found: a job that looked identifiers
up elsewhere cannot leak them in a form the check reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from lake.sharing.contract import Contract
from lake.sharing.deid import (
    Pseudonymiser,
    deidentify,
    deidentify_machines,
    feature_noise,
    tag_spans,
    time_shifts,
)
from lake.sharing.disclosure import (
    DisclosureReport,
    PublishedSets,
    linkage,
    read_splits,
)
from lake.sharing.errors import ContractNotFound, IdentifierLeak, UncheckableFile
from lake.sharing.keys import KeyRing
from lake.sharing.leaks import (
    file_texts,
    frame_leaks,
    leaked_values,
    parquet_statistics,
    text_leaks,
    text_mentions,
)
from lake.sharing.machines import (
    MACHINE,
    count_dropped_types,
    drop_rare,
    raw_identifiers,
    semi_machines,
)
from lake.sharing.store import ContractStore
from lake.sharing.withholding import STRUCTURE, Withholding
from schemas import event_schema_for

__all__ = ["SharedInputs", "SharingGate"]


@dataclass(frozen=True)
class SharedInputs:
    """What the gate lets through.

    Attributes:
        frames: kind -> de-identified rows (lazy).
        machines: the registry machines of the included tenants, de-identified.
        contracts: the contract versions used, one per included tenant.
        excluded_tenants: tenants dropped for want of a contract in force.
        suppressed_machine_types: machine types dropped as too rare (count only).
        min_group_size: the group size applied.
        forbidden: column -> raw values that must not appear in the output.
        time_shifts: each included plant's time shift (tenant, plant as the frames name
            them, ``shift_us``), for the job's pinned cuts (``JobInputs.time_shifts``); never
            recorded.
    """

    frames: dict[str, pl.LazyFrame]
    machines: pl.DataFrame
    contracts: tuple[Contract, ...]
    excluded_tenants: int
    suppressed_machine_types: int
    min_group_size: int
    purpose: str
    forbidden: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    pseudonymisers: Mapping[str, Pseudonymiser] = field(default_factory=dict, repr=False)
    rare_types: frozenset[str] = field(default_factory=frozenset, repr=False)
    disclosure: Mapping[str, Any] | None = None
    withholding: Withholding = field(default_factory=Withholding)
    time_shifts: pl.DataFrame | None = field(default=None, repr=False)

    def contract_refs(self, dataset: str) -> list[Mapping[str, Any]]:
        """The manifest's ``contracts``: id, version, file hash and the per-set opaque ``ref``.

        ``ref`` is a keyed hash of the contract id and ``dataset``: published manifests show it
        instead of the id (:mod:`lake.curation.published`), and two sets' refs do not match.
        """
        return [
            {**c.ref, "ref": self.pseudonymisers[c.tenant].opaque("manifest-ref", dataset)}
            for c in self.contracts
        ]

    def shown_tenant(self, contract: Contract) -> str:
        """The ``tenant`` value the job's rows carry for ``contract``'s company (its pseudonym,
        or the id where the contract releases it)."""
        if "tenant" in contract.pseudonymise:
            return self.pseudonymisers[contract.tenant].pseudonym("tenant", (contract.tenant,))
        return contract.tenant

    def owners(self, frame: pl.DataFrame) -> pl.Series:
        """The company (tenant id) of each row of ``frame`` (a job's split before columns are
        withheld), or null where the row cannot be attributed to exactly one company.

        Each of the columns ``tenant``, ``plant``, ``line`` and ``machine`` the split carries as
        text is looked up among the values the gate handed the job (:attr:`machines`: a
        contract's pseudonyms, or ids where released); a value that names no company, or more
        than one (an id released in clear by two companies), says nothing. A row's owner is the
        one company its columns name; a row whose columns name none (a job that wrote a site
        key into ``tenant`` and dropped the rest) or two different ones is null. Callers treat
        null rows at least as strictly as the strictest contract of the set.
        """
        lookup = self._shown_owners()
        named: list[pl.Series] = []
        for column, mapping in lookup.items():
            if column not in frame.columns:
                continue
            values = frame.get_column(column)
            if values.dtype in (pl.Categorical, pl.Enum):
                values = values.cast(pl.String)
            if values.dtype != pl.String:
                continue
            named.append(values.replace_strict(mapping, default=None, return_dtype=pl.String))
        if not named:
            return pl.Series("owner", [None] * frame.height, pl.String)
        candidates = pl.DataFrame(named).select(
            pl.concat_list(pl.all()).list.drop_nulls().list.unique().alias("owner")
        )
        one = pl.col("owner").list.len() == 1
        return candidates.select(
            pl.when(one).then(pl.col("owner").list.first()).otherwise(None).alias("owner")
        ).to_series()

    def _shown_owners(self) -> dict[str, dict[str, str]]:
        """Column -> {value shown to the job -> tenant id}, for values that name one company."""
        tenants = {self.shown_tenant(c): c.tenant for c in self.contracts}
        lookup: dict[str, dict[str, str]] = {"tenant": dict(tenants)}
        shown = self.machines.filter(pl.col("tenant").is_in(list(tenants)))
        for column in MACHINE[1:]:
            if column not in shown.columns:
                continue
            pairs = shown.select(column, "tenant").unique().drop_nulls()
            single = pairs.filter(pl.len().over(column) == 1)
            lookup[column] = {
                str(value): tenants[tenant]
                for value, tenant in zip(
                    single.get_column(column).to_list(),
                    single.get_column("tenant").to_list(),
                    strict=True,
                )
            }
        return lookup

    def typed_rows(self, splits: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
        """Distinct (tenant id, machine_type) pairs the splits' rows show: each row is traced to
        its company by :meth:`owners` and to the machines its ``plant``, ``line`` and
        ``machine`` columns (whichever the split has) name among that company's machines (a
        line-level row counts for every type on the line). Rows traced to no company, or
        without any of those columns, say nothing about a type."""
        table = self.machines.filter(pl.col("tenant").is_in(list(self._tenant_ids())))
        table = table.with_columns(
            pl.col("tenant").replace_strict(self._tenant_ids(), return_dtype=pl.String)
        )
        parts = [pl.DataFrame(schema={"tenant": pl.String, "machine_type": pl.String})]
        for frame in splits.values():
            where = [
                c
                for c in MACHINE[1:]
                if c in frame.columns and frame.schema[c] in (pl.String, pl.Categorical)
            ]
            if not where:
                continue
            rows = frame.select(pl.col(c).cast(pl.String) for c in where).with_columns(
                self.owners(frame).alias("tenant")
            )
            rows = rows.drop_nulls("tenant").unique()
            typed = rows.join(table.select("tenant", *where, "machine_type"), on=["tenant", *where])
            parts.append(typed.select("tenant", pl.col("machine_type").cast(pl.String)))
        return pl.concat(parts, how="vertical").unique()

    def _tenant_ids(self) -> dict[str, str]:
        return {self.shown_tenant(c): c.tenant for c in self.contracts}

    def noisy_features(
        self,
        splits: Mapping[str, pl.DataFrame],
        features: Sequence[str],
        key_columns: Sequence[str],
    ) -> dict[str, pl.DataFrame]:
        """``splits`` with each contract's ``feature_noise`` on the float ``features`` of its
        rows (:func:`lake.sharing.deid.feature_noise`, keyed by the row's ``key_columns``).

        Rows are traced to their company by :meth:`owners`; a row that cannot be traced (a
        split without such columns, or values that name no company or two) gets the noise of
        the contract with the largest ``feature_noise``.
        """
        noisy = sorted(
            (c for c in self.contracts if c.feature_noise > 0),
            key=lambda c: (-c.feature_noise, c.id),
        )
        if not noisy:
            return dict(splits)
        out: dict[str, pl.DataFrame] = {}
        for name, frame in splits.items():
            owner = self.owners(frame)
            top = noisy[0]
            combined = feature_noise(
                frame, features, key_columns, self.pseudonymisers[top.tenant], top.feature_noise
            )
            untraced = pl.lit(owner.is_null())
            combined = {
                column: pl.when(untraced).then(expr).otherwise(pl.col(column))
                for column, expr in combined.items()
            }
            for contract in noisy:
                exprs = feature_noise(
                    frame,
                    features,
                    key_columns,
                    self.pseudonymisers[contract.tenant],
                    contract.feature_noise,
                )
                ours = pl.lit(owner == contract.tenant)
                for column, expr in exprs.items():
                    rest = combined.get(column, pl.col(column))
                    combined[column] = pl.when(ours).then(expr).otherwise(rest)
            out[name] = frame.with_columns(e.alias(c) for c, e in combined.items())
        return out

    def hidden(self) -> list[str]:
        """Every raw identifier a contract of the set hides (sorted)."""
        return sorted(set().union(*self.forbidden.values())) if self.forbidden else []

    def check_files(self, dataset: str, files: Mapping[str, bytes], *, hint: str = "") -> None:
        """Raise :class:`IdentifierLeak` if a hidden raw identifier is in a file's bytes or in
        what a reader decodes from them (:func:`lake.sharing.leaks.file_texts`; ``files``:
        name -> bytes; ``hint`` ends the message), :class:`UncheckableFile` if a file is in a
        form that cannot be checked."""
        raw = self.hidden()
        for file, data in files.items():
            texts = file_texts(data)
            if texts is None:
                raise UncheckableFile(dataset, file, hint=hint)
            hits = len({v for text in texts for v in leaked_values(text, raw)})
            if hits:
                raise IdentifierLeak(dataset, file, hits, file=True, hint=hint)

    def check_prose(self, dataset: str, files: Mapping[str, bytes], *, hint: str = "") -> None:
        """Raise :class:`IdentifierLeak` if generated text (the published manifest, the data
        card: ``files``, name -> bytes) names a hidden raw identifier as a token, in any letter
        case (:func:`lake.sharing.leaks.text_mentions`)."""
        raw = self.hidden()
        for file, data in files.items():
            named = text_mentions(data, raw)
            if named:
                raise IdentifierLeak(dataset, file, len(named), file=True, hint=hint)

    def check_written(self, dataset: str, files: Sequence[Path]) -> None:
        """Raise :class:`IdentifierLeak` if a written Parquet file's statistics or metadata
        hold a hidden raw identifier."""
        raw = self.hidden()
        for path in files:
            if path.suffix == ".parquet":
                hits = sum(1 for v in parquet_statistics(path) if text_leaks(v.encode(), raw))
                if hits:
                    raise IdentifierLeak(dataset, f"{path.name} statistics", hits)

    def withheld_columns(self) -> tuple[str, ...]:
        """Output columns left out of the published set: ``tenant``, ``plant`` and ``line``
        unless every contract releases them (they give away a company's shape), and every one
        the set's previous version withheld and the operator did not reset
        (:mod:`lake.sharing.withholding`)."""
        by_contracts = self._withheld_by_contracts()
        return tuple(c for c in STRUCTURE if c in by_contracts or c in self.withholding.carried)

    def _withheld_by_contracts(self) -> tuple[str, ...]:
        return tuple(
            column
            for column in STRUCTURE
            if not (self.contracts and all(column in c.release for c in self.contracts))
        )

    def record(self) -> dict[str, Any]:
        """The manifest's ``sharing`` entry (counts only: no tenant or machine names)."""
        return {
            **({"disclosure": dict(self.disclosure)} if self.disclosure is not None else {}),
            "enforced": True,
            "stage": "inputs",
            "purpose": self.purpose,
            "tenants": len(self.contracts),
            "excluded_tenants": self.excluded_tenants,
            "suppressed_machine_types": self.suppressed_machine_types,
            "min_group_size": self.min_group_size,
            **self.withholding.record(self.withheld_columns(), self._withheld_by_contracts()),
        }

    def counts(self) -> dict[str, int]:
        """Progress counts of the ``sharing`` stage."""
        return {
            "tenants": len(self.contracts),
            "excluded_tenants": self.excluded_tenants,
            "suppressed_machine_types": self.suppressed_machine_types,
        }


class SharingGate:
    """Applies the contracts of ``store`` with the pseudonym keys of ``keys``."""

    def __init__(self, store: ContractStore, keys: KeyRing, *, min_group_size: int = 2) -> None:
        self.store = store
        self.keys = keys
        self.min_group_size = min_group_size

    def apply(
        self,
        purpose: str,
        frames: Mapping[str, pl.LazyFrame],
        machines: pl.DataFrame,
        tags: pl.DataFrame,
        *,
        also_rare: frozenset[str] = frozenset(),
        identifier_frames: Mapping[str, pl.LazyFrame] | None = None,
    ) -> SharedInputs:
        """Filter, suppress and de-identify ``frames`` (kind -> rows) for ``purpose``.

        ``machines`` are the registry's machines (tenant, plant, line, machine, machine_type),
        ``tags`` its tag ranges (machine_type, tag, min, max: the scale of value noise).
        ``also_rare`` adds machine types to suppress (found rare in a job's output by
        :meth:`rare_in_output`). ``identifier_frames`` (kind -> silver rows, default
        ``frames``) are the rows whose part serials and lots the set must not show: the build
        passes every row of the pinned versions, not only those the spec's filters read, so
        that it looks for what ``datasets scan`` looks for.
        """
        known = sorted(
            set(machines.get_column("tenant").to_list())
            | {c.tenant for c in self.store.contracts()}
        )
        contracts = {t: c for t in known if (c := self.store.in_force(t, purpose)) is not None}
        released = {kind: self._release(kind, lf, contracts) for kind, lf in frames.items()}
        rare = self._rare_types(released, machines) | also_rare
        kept_machines = drop_rare(machines, contracts, rare)
        pseudonymisers = {t: Pseudonymiser(c.id, self.keys.key(c.id)) for t, c in contracts.items()}
        forbidden = raw_identifiers(
            list(contracts.values()),
            machines,
            frames if identifier_frames is None else identifier_frames,
            others=[t for t in known if t not in contracts],
        )
        out_machines = [
            deidentify_machines(kept_machines, c, pseudonymisers[t]) for t, c in contracts.items()
        ]
        spans = tag_spans(kept_machines, tags)
        out_frames: dict[str, pl.LazyFrame] = {}
        for kind, lf in released.items():
            parts = [
                deidentify(
                    semi_machines(lf.filter(pl.col("tenant") == t), kept_machines),
                    kind,
                    c,
                    pseudonymisers[t],
                    spans,
                )
                for t, c in contracts.items()
            ]
            out_frames[kind] = (
                pl.concat(parts, how="vertical") if parts else lf.filter(pl.lit(False))
            )
        machines_out = pl.concat(out_machines, how="vertical") if out_machines else machines.clear()
        shifts = [time_shifts(kept_machines, c, pseudonymisers[t]) for t, c in contracts.items()]
        return SharedInputs(
            time_shifts=pl.concat(shifts, how="vertical") if shifts else None,
            frames=out_frames,
            machines=machines_out,
            contracts=tuple(contracts.values()),
            excluded_tenants=len(known) - len(contracts),
            suppressed_machine_types=count_dropped_types(machines, contracts, kept_machines),
            min_group_size=self.min_group_size,
            purpose=purpose,
            forbidden=forbidden,
            pseudonymisers=pseudonymisers,
            rare_types=rare,
        )

    def rare_in_output(
        self, shared: SharedInputs, splits: Mapping[str, pl.DataFrame]
    ) -> frozenset[str]:
        """Machine types that fewer than ``min_group_size`` tenants contribute *output* rows of.

        Rows are traced to companies and machine types by :meth:`SharedInputs.typed_rows` (a
        line-level row counts for every type on the line); rows it cannot trace are left to
        the count over the released input rows. Only types not yet suppressed are returned,
        and none when no contract sets ``suppress_rare``.
        """
        if self.min_group_size <= 1 or not splits:
            return frozenset()
        typed = shared.typed_rows(splits)
        counts = typed.group_by("machine_type").agg(pl.col("tenant").n_unique().alias("n"))
        rare = set(counts.filter(pl.col("n") < self.min_group_size)["machine_type"].to_list())
        if not any(c.suppress_rare for c in shared.contracts):
            return frozenset()
        return frozenset(rare - shared.rare_types)

    @staticmethod
    def check_output(
        dataset: str,
        splits: Mapping[str, pl.DataFrame],
        files: Mapping[str, bytes],
        shared: SharedInputs,
    ) -> None:
        """Raise :class:`IdentifierLeak` if a hidden raw identifier is in the output, whole or
        inside another value (:mod:`lake.sharing.leaks`)."""
        raw = shared.hidden()
        for name, frame in splits.items():
            for column, hits in frame_leaks(frame, raw).items():
                raise IdentifierLeak(dataset, f"{name}.{column}", hits)
        shared.check_files(dataset, files)

    def disclosure(
        self,
        dataset: str,
        output: Mapping[str, pl.DataFrame],
        published: Mapping[str, pl.DataFrame],
        shared: SharedInputs,
        curated: PublishedSets,
    ) -> DisclosureReport:
        """The disclosure report of a new version, checked against its contracts' limits.

        Args:
            dataset: the dataset name (messages).
            output: the job's splits before columns were withheld (for the group sizes).
            published: the splits as they will be published (for linkage).
            shared: what :meth:`apply` let through.
            curated: the curated area holding the other published versions.

        Raises:
            DisclosureRefused: a contract's ``max_linkable_share`` or ``min_group_size`` is
                exceeded; nothing may be published.
        """
        ours = {c.tenant: _form(c) for c in shared.contracts}
        new = pl.concat(list(published.values()), how="diagonal_relaxed")
        owners = _owners(output, published, shared)
        tolerance = min((c.linkage_tolerance for c in shared.contracts), default=0.001)
        exact, key, nearest, compared, measured = 0.0, list[str](), 0.0, 0, 0
        for name, version, manifest in curated.published():
            used = {}
            for ref in manifest.get("contracts", []):
                try:
                    then = self.store.get(str(ref["id"]), int(ref["version"]))
                except (ContractNotFound, KeyError, ValueError):
                    continue
                used[then.tenant] = _form(then)
            changed = [t for t in set(used) & set(ours) if used[t] != ours[t]]
            if not changed:
                continue
            compared += 1
            at_risk = (
                new if owners is None else new.filter(owners.is_null() | owners.is_in(changed))
            )
            measured = max(measured, at_risk.height)
            other = read_splits(curated, name, version, manifest)
            one_exact, one_key, one_nearest = linkage(at_risk, [other], tolerance)
            if one_exact > exact:
                exact, key = one_exact, one_key
            nearest = max(nearest, one_nearest)
        smallest, types = _type_groups(shared.typed_rows(output))
        report = DisclosureReport(
            rows=new.height,
            untraced_rows=new.height if owners is None else owners.null_count(),
            rows_at_risk=measured,
            compared_versions=compared,
            exact_share=round(exact, 6),
            exact_key=key,
            nearest_share=round(nearest, 6),
            tolerance=tolerance,
            machine_type_min_companies=smallest,
            machine_types=types,
            withheld_columns=list(shared.withheld_columns()),
        )
        report.enforce(
            dataset, [(c.max_linkable_share, c.min_group_size) for c in shared.contracts]
        )
        return report

    def _release(
        self, kind: str, lf: pl.LazyFrame, contracts: Mapping[str, Contract]
    ) -> pl.LazyFrame:
        """Rows of ``kind`` some contract releases (still with raw identifiers)."""
        parts: list[pl.Expr] = []
        for tenant, c in contracts.items():
            if kind not in c.kinds:
                continue
            cond = pl.col("tenant") == tenant
            if c.start is not None:
                cond = cond & (pl.col("event_time") >= pl.lit(c.start))
            if c.end is not None:
                cond = cond & (pl.col("event_time") < pl.lit(c.end))
            tag = event_schema_for(kind).tag_column
            if tag is not None:
                if c.tags is not None:
                    cond = cond & pl.col(tag).is_in(list(c.tags))
                if c.confidential_tags:
                    cond = cond & ~pl.col(tag).is_in(list(c.confidential_tags))
            parts.append(cond)
        if not parts:
            return lf.filter(pl.lit(False))
        return lf.filter(pl.any_horizontal(parts))

    def _rare_types(
        self, released: Mapping[str, pl.LazyFrame], machines: pl.DataFrame
    ) -> frozenset[str]:
        """Machine types fewer than ``min_group_size`` tenants contribute rows of."""
        if self.min_group_size <= 1:
            return frozenset()
        seen = pl.concat(
            [lf.select(MACHINE).unique().collect() for lf in released.values()], how="vertical"
        ).unique()
        typed = seen.join(machines, on=MACHINE, how="inner")
        counts = typed.group_by("machine_type").agg(pl.col("tenant").n_unique().alias("n"))
        rare = counts.filter(pl.col("n") < self.min_group_size).get_column("machine_type")
        return frozenset(rare.to_list())


def _form(contract: Contract) -> tuple[object, ...]:
    """What decides how a contract's rows look once de-identified: its id (the pseudonym key)
    and its de-identification options. Two contract versions of one form give a company's rows
    the same published values; any difference (a column released, noise turned off) can make
    them link."""
    return (
        contract.id,
        tuple(sorted(contract.pseudonymise)),
        tuple(sorted(contract.release)),
        tuple(sorted(contract.confidential_columns)),
        contract.time_shift_days,
        contract.value_noise,
        contract.feature_noise,
        contract.time_grid_s,
    )


def _type_groups(typed: pl.DataFrame) -> tuple[int | None, int]:
    """``(fewest companies behind a machine type, number of types)`` of
    :meth:`SharedInputs.typed_rows`; None when no row shows a type."""
    counts = typed.group_by("machine_type").agg(pl.col("tenant").n_unique().alias("n"))
    if counts.height == 0:
        return None, 0
    return int(counts["n"].min()), counts.height  # type: ignore[arg-type]


def _owners(
    output: Mapping[str, pl.DataFrame],
    published: Mapping[str, pl.DataFrame],
    shared: SharedInputs,
) -> pl.Series | None:
    """The company (tenant id) of each row of ``published``'s splits concatenated, traced in
    ``output`` (the same rows before columns were withheld) by :meth:`SharedInputs.owners`:
    null where a row names no company or two (such rows are always measured); None when a
    split's rows do not line up (then every row is compared)."""
    parts = []
    for name, frame in published.items():
        full = output.get(name)
        if full is None or full.height != frame.height:
            return None
        parts.append(shared.owners(full))
    return pl.concat(parts) if parts else pl.Series("owner", [], pl.String)
