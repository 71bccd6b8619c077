"""The read decision shared by ``maxlake datasets pull`` and the dataset service.

Order matters: the token is checked first (401), then the request's form (400: a name that
could leave the catalog never touches a path), then the grant (403, *before* looking the
dataset up, so a principal cannot probe which datasets exist), then existence (404), then
whether the version may be served at all (403): it must have been built under sharing
contracts, be ``active``, and none of its contracts may be revoked in the registry now (the
registry is checked too, not only the manifest's status, in case marking was interrupted), and
it must have passed its output checks unless the reader opts in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lake.access.principals import Principal
from lake.curation import (
    CuratedArea,
    DatasetNotFound,
    InvalidDatasetRef,
    Manifest,
    revoked_contracts_of,
    show,
)
from lake.curation.catalog import parse_ref
from lake.curation.errors import failed_quality_detail
from lake.curation.published import REVOKED_NOTE
from lake.location import LakeLocation
from lake.sharing import ContractStore
from maxlake.errors import did_you_mean
from maxlake.settings import Settings

__all__ = ["Decision", "access_dir", "check_read"]


@dataclass(frozen=True)
class Decision:
    """The outcome of a read request.

    Attributes:
        outcome: an audit outcome (``allowed``, ``denied``, ``unauthenticated``, ...).
        status: the HTTP status that goes with it.
        detail: a message for the caller (never a secret, never another dataset's name).
        manifest: the version's manifest when it was found.
    """

    outcome: str
    status: int
    detail: str
    manifest: Manifest | None = None

    @property
    def allowed(self) -> bool:
        """Whether the read may go ahead."""
        return self.outcome == "allowed"


def access_dir(settings: Settings) -> LakeLocation:
    """``MAXLAKE_ACCESS_DIR`` (a local path or an object-store URI), default
    ``<lake_root>/access`` (on the lake's object store when the lake root is one)."""
    return LakeLocation.area(settings, settings.access_dir, "access")


def check_read(
    principal: Principal | None,
    name: str,
    version: str | int | None,
    split: str | None,
    *,
    lake_root: str | Path | Settings | CuratedArea,
    contracts: ContractStore,
    allow_failed_quality: bool = False,
) -> Decision:
    """May ``principal`` read ``name`` at ``version`` (and ``split``, when given)?

    A version whose output checks failed (published with ``--allow-failed-quality``) is
    denied (403) unless the reader opts in with ``allow_failed_quality``.
    """
    if principal is None:
        return Decision("unauthenticated", 401, "a valid token is required")
    try:
        name, at = parse_ref(name)
        if version is not None:
            _, asked = parse_ref(f"{name}@{version}")
            if at is not None and at != asked:
                return Decision("invalid", 400, f"two versions asked: @{at} and {version}")
        elif at is not None:
            version = at
    except InvalidDatasetRef as exc:
        return Decision("invalid", 400, str(exc))
    if not principal.may_read(name):
        return Decision(
            "denied",
            403,
            f"principal {principal.name!r} has no grant for {name!r} (or no dataset has that "
            "name: check its spelling with whoever granted you access)",
        )
    try:
        manifest = show(name, version, lake_root=lake_root)
    except InvalidDatasetRef as exc:
        return Decision("invalid", 400, str(exc))
    except DatasetNotFound as exc:
        return Decision("not_found", 404, str(exc))
    ref = f"{manifest.name}@v{manifest.version}"
    if not manifest.enforced:
        detail = f"{ref} was built without sharing contracts and is not served"
        return Decision("denied", 403, detail, manifest)
    revoked = revoked_contracts_of(manifest, contracts)
    if manifest.status != "active" or revoked:
        return Decision("revoked", 403, f"{ref} is revoked ({REVOKED_NOTE})", manifest)
    if not manifest.quality_passed and not allow_failed_quality:
        detail = failed_quality_detail(ref, manifest.quality_failed)
        return Decision("denied", 403, detail, manifest)
    if split is not None:
        try:
            parse_ref(split)
        except InvalidDatasetRef:
            return Decision("invalid", 400, f"invalid split {split!r}")
        if split not in manifest.splits:
            known = ", ".join(sorted(manifest.splits))
            return Decision(
                "not_found",
                404,
                f"{ref} has no split {split!r}{did_you_mean(split, sorted(manifest.splits))} "
                f"(splits: {known})",
                manifest,
            )
    return Decision("allowed", 200, "ok", manifest)
