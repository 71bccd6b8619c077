"""Errors of dataset specs, builds and the dataset catalog."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from lake.errors import LakeError
from maxlake.errors import ConfigError, TerminalError, did_you_mean

if TYPE_CHECKING:
    from lake.curation.manifest import Manifest

__all__ = [
    "CurationError",
    "DatasetNotFound",
    "FailedQualityRefused",
    "InvalidDatasetRef",
    "KeyProblemsError",
    "PullTargetTaken",
    "QualityCheckFailed",
    "SchemaChanged",
    "SpecError",
    "UnchangedDataset",
    "VersionRevoked",
]


class CurationError(LakeError):
    """Base of the errors of dataset specs, builds, jobs and the dataset catalog."""


class KeyProblemsError(CurationError, ConfigError):
    """Every ``(key, problem)`` found in one subject, as one error: the message is
    ``<subject>: <line>`` for one problem and ``<subject>: N <several>:`` then one indented
    line each for several; a subclass sets how a subject and a line read and what several are
    (``_subject``, ``_line``: format strings; ``_several``).

    Attributes:
        key: the first problem's key.
        problem: what is wrong with it.
        problems: every ``(key, problem)``, each once; :meth:`of` builds one error of several.
    """

    _subject = "{subject}"
    _line = "{key}: {problem}"
    _several = "problems"

    def __init__(self, subject: str, key: str, problem: str) -> None:
        super().__init__(f"{self._subject.format(subject=subject)}: {self._line_of(key, problem)}")
        self.key = key
        self.problem = problem
        self.problems: tuple[tuple[str, str], ...] = ((key, problem),)

    @classmethod
    def of(cls, subject: str, problems: Sequence[tuple[str, str]]) -> Self:
        """One error for every ``(key, problem)`` of ``subject`` (at least one); ``key`` and
        ``problem`` are the first."""
        unique = tuple(dict.fromkeys(problems))
        error = cls(subject, *unique[0])
        if len(unique) > 1:
            lines = "".join(f"\n  {cls._line_of(key, problem)}" for key, problem in unique)
            head = cls._subject.format(subject=subject)
            error.args = (f"{head}: {len(unique)} {cls._several}:{lines}",)
        error.problems = unique
        return error

    @classmethod
    def _line_of(cls, key: str, problem: str) -> str:
        return cls._line.format(key=key, problem=problem)


class SpecError(KeyProblemsError):
    """A dataset spec file is invalid; the message names the file and the key.

    Attributes:
        source: the spec file (or ``<spec>``).
        key: the dotted key of the first problem (``filters.start``).
        problem: what is wrong with it.
        problems: every ``(key, problem)`` found; :meth:`of` builds one error of several,
            whose message has one line per problem.
    """

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(source, key, problem)
        self.source = source


class InvalidDatasetRef(CurationError, ConfigError):
    """A dataset name, version or split is malformed (or tries to leave the catalog)."""

    code = "invalid"

    def __init__(self, what: str, value: object, valid_form: str) -> None:
        super().__init__(f"invalid {what} {value!r}: expected {valid_form}")
        self.what = what
        self.value = value


class DatasetNotFound(CurationError, TerminalError):
    """A dataset, version or split that the catalog does not hold; lists what exists and, with
    ``suggest`` (not for version numbers, where 'v9' is never a typo of 'v1'), the closest
    name."""

    code = "not_found"

    def __init__(
        self, what: str, wanted: str, existing: Iterable[str], *, suggest: bool = True
    ) -> None:
        existing = list(existing)
        hint = did_you_mean(wanted, existing) if suggest else ""
        known = ", ".join(existing) or "none"
        super().__init__(f"no {what} {wanted!r}{hint} (available: {known})")
        self.what = what
        self.wanted = wanted


class QualityCheckFailed(CurationError, TerminalError):
    """The built dataset failed its output checks; nothing was published."""

    def __init__(self, dataset: str, failed: Iterable[str], why: str = "") -> None:
        failed = list(failed)
        names = ", ".join(failed[:8]) + (f" and {len(failed) - 8} more" if len(failed) > 8 else "")
        hint = why or "build with allow_failed_quality / --allow-failed-quality to publish anyway"
        super().__init__(
            f"dataset {dataset!r} failed its output checks ({names}); nothing was published "
            f"({hint})"
        )
        self.dataset = dataset
        self.failed = failed


class SchemaChanged(CurationError, TerminalError):
    """The build was asked to keep the previous version's columns (``require_same_columns``)
    and they changed; nothing was published.

    Attributes:
        dataset: the dataset name.
        change: the ``schema_change`` record (:mod:`lake.curation.schema_change`).
    """

    def __init__(self, dataset: str, change: Mapping[str, Any], lines: Sequence[str]) -> None:
        super().__init__(
            f"dataset {dataset!r}: nothing was published because the columns differ from "
            f"the previous version (--require-same-columns): " + "; ".join(lines)
        )
        self.dataset = dataset
        self.change = change


class VersionRevoked(CurationError, TerminalError):
    """A version asked for by number was revoked (a contract it was built under was
    revoked): ``show`` still returns its manifest, but ``load``, ``iter_batches``, ``pull`` and
    the service no longer hand out its rows.

    Attributes:
        ref: ``name@vN``.
        status: the version's status (``revoked``).
        reason: the manifest's ``status_reason``.
    """

    code = "revoked"

    def __init__(self, ref: str, status: str, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(f"{ref} is {status}{why}; it can no longer be read")
        self.ref = ref
        self.status = status
        self.reason = reason


def failed_quality_detail(ref: str, failed: Iterable[str]) -> str:
    """Why a failed-quality version is refused, and how to read it anyway."""
    names = ", ".join(failed) or "unknown checks"
    return (
        f"{ref} failed its output checks ({names}) and was published with "
        "--allow-failed-quality; it is not served by default: read it anyway with "
        "allow_failed_quality=True (CLI --allow-failed-quality, HTTP ?allow_failed_quality=true, "
        "Delta Sharing: the share named like yours plus '-allow-failed-quality', such as "
        "curated-allow-failed-quality.<set>.<split>)"
    )


class UnchangedDataset(CurationError, TerminalError):
    """A build came out identical to the newest version (same content hash, same spec, same
    quality verdict, that version active) and was asked not to publish a copy of it
    (``publish_identical=False``); nothing was published.

    Attributes:
        manifest: the newest version's manifest, which already holds this content.
    """

    def __init__(self, manifest: Manifest) -> None:
        ref = f"{manifest.name}@v{manifest.version}"
        super().__init__(
            f"the build is identical to {ref} (same content hash {manifest.content_hash[:12]}, "
            f"same spec): nothing was published, {ref} stays the newest version "
            "(--publish-identical publishes it as a new version anyway)"
        )
        self.manifest = manifest


class PullTargetTaken(CurationError, TerminalError):
    """The folder a pull writes to holds another README or dataset card; nothing was pulled
    (the user's request, not a fault of the lake: audited as ``invalid``, status 409)."""

    code = "invalid"


class FailedQualityRefused(CurationError, TerminalError):
    """A version that failed its output checks was asked for without opting in."""

    code = "denied"

    def __init__(self, ref: str, failed: Iterable[str]) -> None:
        failed = list(failed)
        super().__init__(failed_quality_detail(ref, failed))
        self.ref = ref
        self.failed = failed
