"""``maxlake tenants onboard``: bring a new company into the alliance in one documented step.

Given a registry fragment with the company's tenant (plants, lines, machines, and any new
machine types or units), onboarding stores it as a new registry version, creates the tenant's
topics, and (on a secure broker) a SCRAM user for its plants with prefixed ACLs that allow
writing only the tenant's topics. It writes a *draft* sharing contract with safe defaults:
nothing is shared until the company signs it off and an operator adds it with
``maxlake contracts add``. Dry run by default.

Every check runs before the first change, in the dry run too: the fragment, the administrator
credentials of a secure broker, a free plant user name, no earlier draft. An onboarding that
stopped midway anyway (a broker that went away) is finished by the same command with
``--resume``: the registry must already hold the tenant exactly as the fragment defines it; the
registry step is skipped and the others (topics, user, ACLs, draft) are done or kept.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lake.location import LakeLocation
from lake.registry_store import RegistryStore
from maxlake.cli.registry_cmd import read_fragment
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas import EventKind, RegistryError
from schemas.registry_diff import merge_documents


def register(sub: Any) -> None:
    """Add ``tenants onboard`` and ``tenants list``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "tenants", help="member companies: onboard a new one, list them"
    )
    cmds = parser.add_subparsers(dest="tenants_command", metavar="ACTION", required=True)
    listing = cmds.add_parser("list", help="tenants of the newest registry version")
    listing.set_defaults(handler=_list)
    onboard = cmds.add_parser(
        "onboard",
        help="register a company (registry fragment FILE), create its topics, plant user, "
        "ACLs and a draft sharing contract",
        description="FILE is registry TOML holding exactly one new [[tenants]] entry (and any "
        "machine types or units it needs). Dry run unless --yes.",
    )
    onboard.add_argument("file", type=Path, help="onboarding TOML file of the new company")
    onboard.add_argument("--yes", action="store_true", help="do it (default: dry run)")
    onboard.add_argument("--reason", default="", help="why (required with --yes)")
    onboard.add_argument("--author", default=None, help="who (default: user@host)")
    onboard.add_argument(
        "--plant-user",
        default=None,
        help="SCRAM user for the company's plants (default: <tenant>-plant)",
    )
    onboard.add_argument(
        "--no-broker-security",
        action="store_true",
        help="skip the SCRAM user and ACLs (a broker without SASL/ACLs)",
    )
    onboard.add_argument(
        "--resume",
        action="store_true",
        help="finish an onboarding that stopped after storing the registry version: the "
        "registry must already hold the tenant exactly as FILE defines it",
    )
    onboard.add_argument(
        "--drafts-dir",
        default=None,
        help="where the draft contract goes: a local path or an object-store URI "
        "(default: <lake_root>/sharing/drafts)",
    )
    onboard.set_defaults(handler=_onboard)


def _list(args: argparse.Namespace) -> int:
    current = RegistryStore(LakeLocation.from_settings(Settings())).get()
    for tenant in current.registry.tenants:
        machines = sum(len(ln.machines) for p in tenant.plants for ln in p.lines)
        plants = len(tenant.plants)
        print(f"{tenant.id:<28} {tenant.industry:<16} {plants} plant(s), {machines} machines")
    return 0


def _onboard(args: argparse.Namespace) -> int:
    settings = Settings()
    fragment = read_fragment(args.file)
    tenants = fragment.get("tenants")
    if not isinstance(tenants, list) or len(tenants) != 1 or not isinstance(tenants[0], dict):
        raise RegistryError(str(args.file), "tenants", "must hold exactly one [[tenants]] entry")
    tenant = str(tenants[0].get("id", ""))
    store = RegistryStore(LakeLocation.from_settings(settings))
    base = store.get()
    document = merge_documents(base.registry.document(), fragment, source=str(args.file))
    changes = store.plan(document, base=base)
    resuming = bool(args.resume)
    registered = base.registry.tenant(tenant) is not None
    if registered and (changes or not resuming):
        raise ConfigError(
            f"tenant {tenant!r} is already in registry version {base.version}; add plants or "
            "machines with `maxlake registry apply` or `maxlake registry add-machine`"
            + ("" if changes else "; to finish an onboarding of it that stopped, add --resume")
        )
    if resuming and not registered:
        raise ConfigError(
            f"tenant {tenant!r} is not in registry version {base.version}: nothing to resume; "
            "run without --resume"
        )
    plant_user = args.plant_user or f"{tenant}-plant"
    topics = [settings.topic_for(tenant, k.value) for k in EventKind]
    drafts = LakeLocation.area(settings, args.drafts_dir, "sharing", "drafts")
    draft_name = f"{tenant}.toml"
    draft_path = drafts.uri(draft_name)
    print(f"onboarding {tenant!r}:")
    if resuming:
        print(
            f"  registry version {base.version} holds {tenant!r} as {args.file} defines it "
            "already: resuming an onboarding that stopped, the remaining steps are idempotent"
        )
    else:
        print(f"  registry version {base.version + 1}: {len(changes)} change(s)")
        for change in changes:
            print(f"    {change}")
    print(f"  topics: {', '.join(topics)}")
    user_exists = False
    if not args.no_broker_security:
        prefix = f"{settings.topic_prefix}.{tenant}."
        print(f"  SCRAM user {plant_user!r}: WRITE/DESCRIBE on topics {prefix}*")
        user_exists = _plant_user_exists(settings, plant_user, resuming=resuming)
    print(f"  draft sharing contract: {draft_path} (nothing shared until signed off)")
    draft_exists = drafts.files().exists(draft_name)
    if draft_exists and not resuming:
        raise ConfigError(_draft_exists(draft_path, tenant) + "; nothing was changed")
    if not args.yes:
        print("dry run: re-run with --yes --reason '...' to do it", file=sys.stderr)
        return 0
    author = args.author or f"{getpass.getuser()}@{socket.gethostname()}"
    from lake.sharing.contract import parse_contract  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    draft = draft_contract(tenant, author)
    parse_contract(draft.encode(), source=draft_path)
    if not resuming:
        stored = store.commit(document, base=base, author=author, reason=args.reason)
        print(f"stored registry version {stored.version}")
    from streams.topics import ensure_topics  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    created = ensure_topics(settings, [tenant])
    print(f"created {len(created)} topic(s)")
    if not args.no_broker_security:
        _plant_access(settings, tenant, plant_user, user_exists=user_exists)
    if draft_exists:
        print(f"kept {draft_path}, written by the run that stopped; review it")
    else:
        try:
            drafts.files().write_bytes(draft_name, draft.encode("utf-8"), mode="create")
        except FileExistsError as exc:
            raise ConfigError(_draft_exists(draft_path, tenant)) from exc
        print(f"wrote {draft_path}")
    hand_over = "" if args.no_broker_security else "hand the plant its user and password; "
    print(
        f"next: {hand_over}batch workers started without --tenant read the new tenant's topics "
        "within MAXLAKE_REGISTRY_POLL_S (restart workers pinned with --tenant and stream-engine "
        f"workers); once the company signs the contract off: maxlake contracts add {draft_path}"
    )
    return 0


def _plant_user_exists(settings: Settings, user: str, *, resuming: bool) -> bool:
    """Whether SCRAM ``user`` exists, asked with the administrator credentials before anything
    changes, so a missing credential or a taken name stops onboarding before its first step.

    Raises:
        BrokerSecurityError: no administrator credentials (the message names the settings and
            ``--no-broker-security``).
        ConfigError: ``user`` exists and this is not a resumed onboarding.
    """
    from infra.security import BrokerSecurityError  # noqa: PLC0415 - lazy: `maxlake --help` stays fast
    from maxlake.cli.broker_cmd import admin_session  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    try:
        with admin_session(settings) as admin:
            exists = user in admin.users()
    except BrokerSecurityError as exc:
        raise BrokerSecurityError(
            f"{exc}; for a broker without SASL and ACLs, add --no-broker-security. "
            "Nothing was changed"
        ) from exc
    if exists and not resuming:
        raise ConfigError(
            f"SCRAM user {user!r} exists already; pick --plant-user. Nothing was changed"
        )
    return exists


def _plant_access(settings: Settings, tenant: str, user: str, *, user_exists: bool) -> None:
    from infra.security import generate_password, plant_acls  # noqa: PLC0415 - lazy: `maxlake --help` stays fast
    from maxlake.cli.broker_cmd import admin_session, print_password  # noqa: PLC0415 - lazy: `maxlake --help` stays fast

    acls = plant_acls(user, topic_prefix=settings.topic_prefix, tenant=tenant)
    with admin_session(settings) as admin:
        password = None if user_exists else generate_password()
        if password is not None:
            admin.set_password(user, password)
        granted = admin.grant(acls)
    print(f"granted {len(granted)} ACL(s) to {user}")
    if password is not None:
        print_password(user, password)
    else:
        print(
            f"SCRAM user {user} was created by the run that stopped; its password is not shown "
            f"again: `maxlake broker users rotate {user}` issues a new one"
        )


DRAFT_PURPOSE = "to-be-agreed"
"""The purpose of a draft contract: it matches no dataset spec until replaced."""


def draft_contract(tenant: str, author: str) -> str:
    """The TOML of a draft sharing contract for ``tenant`` with safe defaults."""
    today = datetime.now(UTC).date().isoformat()
    cid = f"{tenant.lower()}-draft"
    return (
        f"# DRAFT sharing contract of tenant {tenant!r}, written by `maxlake tenants onboard`\n"
        f"# ({author}, {today}). It is NOT in force: nothing of {tenant!r} is shared until the\n"
        "# company's data-protection officer has reviewed it (purposes, kinds, tags, time range)\n"
        "# and an operator adds it with `maxlake contracts add FILE`.\n"
        "# Safe defaults: every identifier (tenant, plant, line, machine, part serial, lot) is\n"
        "# pseudonymised with a key of this contract (nothing in [deidentify].release), the\n"
        "# tenant column is left out, and machine types too few tenants share are suppressed.\n"
        f'id = "{cid}"\n'
        f'tenant = "{tenant}"\n'
        f'purposes = ["{DRAFT_PURPOSE}"]\n'
        'description = "draft: not signed off"\n'
        "\n[share]\n"
        'kinds = ["telemetry"]\n'
        "tags = []\n"
        "\n[deidentify]\n"
        "release = []\n"
        "suppress_rare = true\n"
    )


def _draft_exists(path: str, tenant: str) -> str:
    return f"{path} exists: a draft of {tenant!r} was written before; review it"
