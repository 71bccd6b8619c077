"""``maxlake contracts``, ``maxlake access``, ``maxlake audit`` and ``maxlake serve``.

Contracts live under ``MAXLAKE_CONTRACTS_DIR`` (default ``<lake>/sharing/contracts``), their
pseudonym keys in ``MAXLAKE_SHARING_SECRETS_FILE``; principals and grants under
``MAXLAKE_ACCESS_DIR``; the audit trail is the Delta table ``ops/audit``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lake import DeltaStore, LakeLocation
from lake.access import PRINCIPAL_KINDS, AccessStore, AuditLog, access_dir
from lake.curation import CuratedArea, revoke_contract, versions_under
from lake.curation.spec import reference_specs
from lake.sharing import ContractStore, KeyRing, contracts_dir, keys_file
from maxlake.cli.lake_guard import require_lake
from maxlake.cli.table import render_table
from maxlake.cli.tenants_cmd import DRAFT_PURPOSE
from maxlake.errors import ConfigError, did_you_mean
from maxlake.settings import Settings


def register(sub: Any) -> None:
    """Add ``contracts``, ``access``, ``audit`` and ``serve``."""
    _register_contracts(sub)
    _register_access(sub)
    audit = sub.add_parser("audit", help="dataset accesses, allowed and denied (ops/audit)")
    audit.add_argument("--since", help="RFC 3339 time or a duration such as 24h or 7d")
    audit.add_argument("--principal", help="only this principal's accesses")
    audit.add_argument("--json", action="store_true", help="JSON lines")
    audit.set_defaults(handler=_audit)
    serve = sub.add_parser("serve", help="run the dataset HTTP service (OpenAPI at /openapi.json)")
    serve.add_argument("--host", help="listen address (default: MAXLAKE_SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port (default: MAXLAKE_SERVER_PORT)")
    serve.set_defaults(handler=_serve)


def _register_contracts(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "contracts", help="sharing contracts per tenant (add, list, show, revoke)"
    )
    cmds = parser.add_subparsers(dest="contracts_command", metavar="SUBCOMMAND", required=True)
    add = cmds.add_parser("add", help="store a contract file as its contract's next version")
    add.add_argument("file", help="contract (TOML): a local path or an object-store URI")
    add.set_defaults(handler=_contracts_add)
    listing = cmds.add_parser("list", help="every contract version and whether it is revoked")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_contracts_list)
    show = cmds.add_parser("show", help="print one contract version (default: newest)")
    show.add_argument("id", help="sharing contract id")
    show.add_argument("--version", type=int, help="contract version (default: newest)")
    show.set_defaults(handler=_contracts_show)
    revoke = cmds.add_parser(
        "revoke", help="revoke a contract (or one version); marks dataset versions built under it"
    )
    revoke.add_argument("id", help="sharing contract id")
    revoke.add_argument("--version", type=int, help="one version only (default: every version)")
    revoke.add_argument(
        "--reason",
        required=True,
        help="why (required: recorded with the revocation and on every dataset version marked)",
    )
    revoke.add_argument(
        "--dry-run",
        action="store_true",
        help="list the dataset versions it would mark revoked; change nothing",
    )
    revoke.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation on a terminal"
    )
    revoke.set_defaults(handler=_contracts_revoke)


def _register_access(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "access", help="principals, tokens and dataset grants"
    )
    cmds = parser.add_subparsers(dest="access_command", metavar="SUBCOMMAND", required=True)
    principal = cmds.add_parser("principal", help="add, list or remove principals")
    pcmds = principal.add_subparsers(dest="principal_command", metavar="ACTION", required=True)
    add = pcmds.add_parser("add", help="create a principal and print its token (shown once)")
    add.add_argument("name", help="principal name (a model team or a service)")
    add.add_argument("--kind", choices=PRINCIPAL_KINDS, required=True, help="what the principal is")
    add.add_argument(
        "--tenant", help="the company it belongs to, a tenant of the registry (informational)"
    )
    add.set_defaults(handler=_principal_add)
    listing = pcmds.add_parser("list", help="principals and their grants (no tokens)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_principal_list)
    remove = pcmds.add_parser("remove", help="delete a principal; its token stops working")
    remove.add_argument("name", help="principal to remove (its tokens stop working)")
    remove.set_defaults(handler=_principal_remove)
    grant = cmds.add_parser("grant", help="let PRINCIPAL read DATASET")
    grant.add_argument("principal", help="principal name")
    grant.add_argument("dataset", help="curated dataset name")
    grant.set_defaults(handler=_grant)
    revoke = cmds.add_parser("revoke", help="withdraw PRINCIPAL's grant for DATASET")
    revoke.add_argument("principal", help="principal name")
    revoke.add_argument("dataset", help="curated dataset name")
    revoke.set_defaults(handler=_revoke_grant)
    profile = cmds.add_parser(
        "profile", help="write a Delta Sharing profile file with a new expiring token"
    )
    profile.add_argument("principal", help="principal the token is for")
    profile.add_argument("--expires", required=True, help="lifetime, e.g. 30d, 12h or 90m")
    profile.add_argument("--out", type=Path, required=True, help="profile file to write (.share)")
    profile.add_argument(
        "--endpoint", help="URL the recipient reaches (default: MAXLAKE_SHARE_ENDPOINT)"
    )
    profile.add_argument(
        "--replace",
        action="store_true",
        help="rotate: the principal's earlier profile tokens stop working now",
    )
    profile.set_defaults(handler=_profile)


def _contracts_add(args: argparse.Namespace) -> int:
    settings = Settings()
    folder, name = LakeLocation.file_of(settings, args.file)
    try:
        data = folder.files().read_bytes(name)
    except OSError as exc:
        raise ConfigError(f"{args.file}: cannot read: {exc.strerror or 'no such file'}") from exc
    keys = KeyRing(keys_file(settings))  # before storing: a lake without a key store refuses
    contract = ContractStore(contracts_dir(settings)).add(data, source=str(args.file))
    created = keys.ensure(contract.id)
    key_note = "new pseudonym key created" if created else "existing pseudonym key kept"
    print(f"{contract.id} v{contract.version} ({contract.tenant}); {key_note}")
    if DRAFT_PURPOSE in contract.purposes:
        print(
            f"warning: {contract.id} still has the onboarding draft's purpose "
            f"{DRAFT_PURPOSE!r}: it is in force but matches no dataset; add the agreed purposes "
            "and add the file again (a new version)",
            file=sys.stderr,
        )
    if "telemetry" in contract.kinds and contract.tags == ():
        print(
            f"warning: {contract.id} shares telemetry but lists no tags (tags = []): no reading "
            f"of {contract.tenant} reaches any set; list the tags to share, or remove the "
            "tags line to share every tag but the confidential ones",
            file=sys.stderr,
        )
    return 0


def _contracts_list(args: argparse.Namespace) -> int:
    settings = Settings()
    store = ContractStore(contracts_dir(settings))
    rows: list[dict[str, Any]] = [
        {
            "id": c.id,
            "version": c.version,
            "tenant": c.tenant,
            "purposes": list(c.purposes),
            "kinds": list(c.kinds),
            "revoked": store.is_revoked(c.id, c.version),
        }
        for c in store.contracts()
    ]
    if not rows and settings.contracts_dir is None:
        require_lake(settings)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no contracts yet (maxlake contracts add FILE)")
        return 0
    table = [
        (
            r["id"],
            r["version"],
            r["tenant"],
            "revoked" if r["revoked"] else "ok",
            ", ".join(r["purposes"]),
        )
        for r in rows
    ]
    print(render_table(("ID", "VER", "TENANT", "STATUS", "PURPOSES"), table, right="VER"))
    return 0


def _contracts_show(args: argparse.Namespace) -> int:
    store = ContractStore(contracts_dir(Settings()))
    contract = store.get(args.id, args.version)
    revoked = store.is_revoked(contract.id, contract.version)
    status = "revoked: not in force" if revoked else "in force"
    print(f"# {contract.id} v{contract.version}: {status} (the file as added follows)")
    print(store.raw(contract).decode("utf-8"), end="")
    return 0


def _contracts_revoke(args: argparse.Namespace) -> int:
    settings = Settings()
    store = ContractStore(contracts_dir(settings))
    area = CuratedArea.of(settings)
    what = f"{args.id}" + (f" v{args.version}" if args.version else " (every version)")
    if args.dry_run or (not args.yes and sys.stdin.isatty()):
        store.get(args.id, args.version)
        affected = versions_under(area, args.id, args.version)
        marks = [ref for ref, status in affected if status != "revoked"]
        already = [ref for ref, status in affected if status == "revoked"]
        print(f"revoking {what} would mark {len(marks)} dataset version(s) revoked:")
        for ref in marks:
            print(f"  {ref}")
        if already:
            print(f"already revoked, left as they are: {', '.join(already)}")
        print("a revocation cannot be undone: readers lose these versions at once")
        if args.dry_run:
            print("dry run: nothing changed")
            return 0
        if input(f"revoke {what}? [y/N] ").strip().lower() not in ("y", "yes"):
            print("not revoked: nothing changed")
            return 1
    entry, marked = revoke_contract(store, area, args.id, args.version, reason=args.reason)
    what = f"{entry.contract}" + (f" v{entry.version}" if entry.version else " (every version)")
    print(f"revoked {what}; dataset versions marked revoked: {', '.join(marked) or 'none'}")
    return 0


def _principal_add(args: argparse.Namespace) -> int:
    from streams.status import check_tenants  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    settings = Settings()
    check_tenants(settings, [args.tenant] if args.tenant else None)
    store = AccessStore(access_dir(settings))
    principal, token = store.add(args.name, args.kind, tenant=args.tenant)
    print(f"principal {principal.name} ({principal.kind}) added; its token, shown only now:")
    print(token)
    return 0


def _principal_list(args: argparse.Namespace) -> int:
    settings = Settings()
    principals = AccessStore(access_dir(settings)).list()
    if not principals and settings.access_dir is None:
        require_lake(settings)
    if args.json:
        print(json.dumps([p.public() for p in principals], indent=2))
        return 0
    if not principals:
        print("no principals yet (maxlake access principal add NAME --kind KIND)")
        return 0
    table = [(p.name, p.kind, p.tenant, ", ".join(p.grants) or None) for p in principals]
    print(render_table(("NAME", "KIND", "TENANT", "GRANTS"), table))
    return 0


def _principal_remove(args: argparse.Namespace) -> int:
    AccessStore(access_dir(Settings())).remove(args.name)
    print(f"principal {args.name} removed")
    return 0


def _grant(args: argparse.Namespace) -> int:
    settings = Settings()
    principal = AccessStore(access_dir(settings)).grant(args.principal, args.dataset)
    unknown = _unknown_dataset_warning(settings, principal.name, args.dataset)
    if unknown:
        print(f"maxlake: warning: {unknown}", file=sys.stderr)
    print(f"{principal.name} may read: {', '.join(principal.grants)}")
    return 0


def _unknown_dataset_warning(settings: Settings, principal: str, dataset: str) -> str | None:
    """Why a grant of ``dataset`` may be a typo: no dataset of the curated area and no
    reference spec has that name (None when one has). The grant stands (a set may be granted
    before its first build); this is the one place a misspelling shows, since a refused pull
    never suggests another dataset's name."""
    known = sorted({*CuratedArea.of(settings).names(), *reference_specs()})
    if dataset in known:
        return None
    return (
        f"no published dataset and no reference dataset is named {dataset!r}"
        f"{did_you_mean(dataset, known)}; the grant is recorded anyway (a dataset may be "
        "granted before its first build): if the name is misspelled, "
        f"`maxlake access revoke {principal} {dataset}` withdraws it"
    )


def _revoke_grant(args: argparse.Namespace) -> int:
    principal = AccessStore(access_dir(Settings())).revoke(args.principal, args.dataset)
    print(f"{principal.name} may read: {', '.join(principal.grants) or 'nothing'}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    """Write ``{shareCredentialsVersion, endpoint, bearerToken, expirationTime}`` (mode 0600).

    The file is opened before the token is issued: an unwritable ``--out`` issues no token and,
    with ``--replace``, revokes none.
    """
    settings = Settings()
    expires_at = datetime.now(UTC) + _duration(args.expires, "--expires")
    existed = args.out.exists()
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"{args.out}: cannot write the profile ({exc.strerror}: {exc.filename}); no token "
            "was issued: give a writable --out"
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        try:
            record, token, dropped = AccessStore(access_dir(settings)).issue_profile_token(
                args.principal, expires_at, replace=args.replace
            )
        except BaseException:
            if not existed:
                args.out.unlink(missing_ok=True)
            raise
        endpoint = args.endpoint or settings.share_endpoint
        if endpoint is None:
            endpoint = f"http://{settings.server_host}:{settings.server_port}/delta-sharing"
        profile = {
            "shareCredentialsVersion": 1,
            "endpoint": endpoint.rstrip("/"),
            "bearerToken": token,
            "expirationTime": record.expires_at,
        }
        fh.truncate(0)
        json.dump(profile, fh, indent=2)
        fh.write("\n")
    rotated = f"; {len(dropped)} earlier profile token(s) revoked" if dropped else ""
    print(
        f"{args.out}: profile for {args.principal} (key {record.key_id}), "
        f"expires {record.expires_at}{rotated}"
    )
    return 0


def _audit(args: argparse.Namespace) -> int:
    since = _since(args.since) if args.since else None
    settings = Settings()
    require_lake(settings)
    rows = AuditLog(DeltaStore.from_settings(settings)).read(since=since, principal=args.principal)
    if args.json:
        for row in rows.iter_rows(named=True):
            print(json.dumps(row, default=str, sort_keys=True))
        return 0
    table = []
    for r in rows.iter_rows(named=True):
        what = r["dataset"] or "-"
        if r["version"] is not None:
            what += f"@v{r['version']}"
        if r["split"]:
            what += f"/{r['split']}"
        outcome = f"{r['outcome']} {r['status'] or ''}".rstrip()
        table.append(
            (f"{r['at']:%Y-%m-%d %H:%M:%S}", r["principal"], r["action"], what, r["rows"], outcome)
        )
    if not table:
        print(_no_audit_rows(settings, args.principal, since))
        return 0
    header = ("AT (UTC)", "PRINCIPAL", "ACTION", "WHAT", "ROWS", "OUTCOME")
    print(render_table(header, table, right="ROWS"))
    return 0


def _no_audit_rows(settings: Settings, principal: str | None, since: datetime | None) -> str:
    """Why ``audit`` printed nothing: no entry at all, or none for that principal (with the
    principals that do have entries in the window, and the closest to a typo)."""
    from streams.status import close_match  # noqa: PLC0415 - lazy: it loads the Kafka clients

    window = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    if principal is None:
        return f"no audit entries{window}"
    seen = AuditLog(DeltaStore.from_settings(settings)).read(since=since, principal=None)
    names = sorted(set(seen["principal"].to_list())) if seen.height else []
    match = close_match(principal, names)
    hint = f" (did you mean {match}?)" if match else ""
    others = f"; principals with entries: {', '.join(names)}" if names else ""
    return f"no audit entries for principal {principal!r}{window}{hint}{others}"


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


_COUNT_UNIT = re.compile(r"([0-9]{1,9})([smhd])")
"""ASCII digits only: ``str.isdigit`` also takes ``²``, which ``int`` refuses."""


def _duration(text: str, option: str) -> timedelta:
    match = _COUNT_UNIT.fullmatch(text)
    if match and int(match.group(1)) > 0:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    raise ConfigError(f"{option} {text!r}: give a positive duration such as 90m, 12h or 30d")


def _since(text: str) -> datetime:
    if _COUNT_UNIT.fullmatch(text):
        return datetime.now(UTC) - _duration(text, "--since")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(f"--since {text!r}: give an RFC 3339 time with offset or 30m, 24h, 7d")
    return moment.astimezone(UTC)


def _serve(args: argparse.Namespace) -> int:
    from maxlake.server import run  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    settings = Settings()
    host = args.host or settings.server_host
    port = args.port if args.port is not None else settings.server_port
    try:
        run(settings, host=host, port=port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise ConfigError(
            f"{host}:{port} is already in use (another `maxlake serve`?): stop that server or "
            "choose another port with --port or MAXLAKE_SERVER_PORT"
        ) from exc
    return 0
