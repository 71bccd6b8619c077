"""``maxlake broker start|stop|status|fetch|users|acls``: the local broker and access control.

Exit codes: 0 done, 1 failure (message on stderr), 3 nothing to do (start while running, stop
while stopped), so scripts can tell "already in the state I wanted" from a failure.

``users`` and ``acls`` work on any cluster: they connect as ``MAXLAKE_SASL_USERNAME`` (a super
user of your cluster) when it is set, else as the admin of the local secure broker (its password
file in the broker home). Generated passwords are printed once and stored nowhere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from infra.broker import LocalBroker, fetch_jars
from infra.errors import BrokerAlreadyRunning, BrokerNotRunning
from infra.security import (
    AccessAdmin,
    AclEntry,
    BrokerSecurityError,
    generate_password,
    plant_acls,
    worker_acls,
)
from infra.tls import existing_tls, make_throwaway_tls
from maxlake.settings import Settings

EXIT_NOTHING_TO_DO = 3
TLS_DAYS = 30
"""Validity of the throwaway CA and certificates of ``broker start --tls``."""


def local_broker(
    settings: Settings, *, secure: bool | None = None, tls: bool = False
) -> LocalBroker:
    """The broker described by the settings (``secure`` overrides ``MAXLAKE_BROKER_SECURE``).

    With ``tls`` its client listener speaks TLS with a throwaway CA kept in
    ``<broker home>/tls`` (made on first use, valid :data:`TLS_DAYS` days); a home that has
    that CA keeps TLS on every later start, stop and status.
    """
    folder = settings.broker_home / "tls"
    files = existing_tls(folder)
    if tls and files is None:
        files = make_throwaway_tls(folder, days=TLS_DAYS)
    return LocalBroker(
        settings.broker_home,
        host=settings.broker_host,
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap_mb=settings.broker_heap_mb,
        secure=settings.broker_secure if secure is None else secure,
        tls=files,
    )


def register(sub: Any) -> None:
    """Add ``broker start|stop|status|fetch``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "broker", help="run a local single-node Kafka broker (KRaft, no Docker)"
    )
    actions = parser.add_subparsers(dest="broker_action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start it and wait until it answers")
    start.add_argument("--timeout", type=float, default=None, help="seconds to wait (default 60)")
    start.add_argument(
        "--secure",
        action="store_true",
        help="SASL/SCRAM-SHA-512 client listener and ACLs (also MAXLAKE_BROKER_SECURE=true)",
    )
    start.add_argument(
        "--tls",
        action="store_true",
        help="TLS client listener with a throwaway CA in <broker home>/tls (for trials): SSL "
        "with client certificates, or SASL_SSL with --secure",
    )
    start.set_defaults(handler=_start)
    actions.add_parser("stop", help="stop it (SIGTERM, then SIGKILL)").set_defaults(handler=_stop)
    actions.add_parser("status", help="is it running and answering?").set_defaults(handler=_status)
    actions.add_parser("fetch", help="download the broker jars with Maven").set_defaults(
        handler=_fetch
    )
    _register_users(actions)
    _register_acls(actions)


def _register_users(actions: Any) -> None:
    users = actions.add_parser("users", help="SCRAM users of the cluster (plants, workers)")
    verbs = users.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    add = verbs.add_parser("add", help="create a user; prints its generated password once")
    add.add_argument("name", help="SASL user name to create")
    add.set_defaults(handler=_users_add)
    rotate = verbs.add_parser("rotate", help="replace a user's password; prints the new one once")
    rotate.add_argument("name", help="SASL user whose password is replaced")
    rotate.set_defaults(handler=_users_rotate)
    delete = verbs.add_parser("delete", help="remove a user's credential and all its ACLs")
    delete.add_argument("name", help="SASL user to delete")
    delete.set_defaults(handler=_users_delete)
    verbs.add_parser("list", help="users with a SCRAM credential").set_defaults(handler=_users_list)


def _register_acls(actions: Any) -> None:
    acls = actions.add_parser("acls", help="per-tenant access rules (prefixed ACLs)")
    verbs = acls.add_subparsers(dest="acls_action", metavar="ACTION", required=True)
    plant = verbs.add_parser(
        "grant-plant", help="USER may write (not read) its tenant's topics, nothing else"
    )
    plant.add_argument("user", help="SASL user of the plant producer")
    plant.add_argument("--tenant", required=True, help="the plant's tenant id")
    plant.set_defaults(handler=_grant_plant)
    worker = verbs.add_parser(
        "grant-worker", help="USER may consume tenants' topics in the ingest worker groups"
    )
    worker.add_argument("user", help="SASL user the ingest workers log in as")
    worker.add_argument(
        "--group", default=None, help="consumer group prefix (default MAXLAKE_GROUP_ID)"
    )
    worker.add_argument(
        "--tenant", action="append", default=[], help="limit to this tenant (repeatable)"
    )
    worker.set_defaults(handler=_grant_worker)
    listing = verbs.add_parser("list", help="ACLs of the cluster, or of one user")
    listing.add_argument("--user", default=None, help="only the ACLs of this user")
    listing.set_defaults(handler=_acls_list)
    revoke = verbs.add_parser("revoke", help="delete every ACL of USER")
    revoke.add_argument("user", help="user whose ACLs are removed")
    revoke.set_defaults(handler=_acls_revoke)


def _start(args: argparse.Namespace) -> int:
    settings = Settings()
    broker = local_broker(settings, secure=True if args.secure else None, tls=args.tls)
    fetch_jars(broker.libs_dir)
    timeout = args.timeout if args.timeout is not None else settings.broker_start_timeout_s
    try:
        pid = broker.start(timeout_s=timeout)
    except BrokerAlreadyRunning as exc:
        print(f"maxlake: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_DO
    print(f"broker started: pid {pid}, bootstrap {broker.bootstrap}, log {broker.log_path}")
    if broker.secure:
        print(
            f"secure mode: {broker.client_protocol} with SCRAM-SHA-512, ACLs enforced; "
            f"admin password in {broker.admin_password_path} (mode 0600)"
        )
    if broker.tls is not None:
        tls = broker.tls
        client = "" if broker.secure else f" MAXLAKE_SSL_CERTFILE={tls.client_cert}"
        client += "" if broker.secure else f" MAXLAKE_SSL_KEYFILE={tls.client_key}"
        print(
            f"TLS ({broker.client_protocol}, throwaway CA, not for production); clients: "
            f"MAXLAKE_KAFKA_SECURITY_PROTOCOL={broker.client_protocol} "
            f"MAXLAKE_SSL_CAFILE={tls.ca}{client}"
        )
    return 0


def _stop(args: argparse.Namespace) -> int:
    broker = local_broker(Settings())
    try:
        pid = broker.stop()
    except BrokerNotRunning as exc:
        print(f"maxlake: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_DO
    print(f"broker stopped (pid {pid})")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = local_broker(Settings()).status()
    if not status.running:
        print(f"broker: stopped (home {status.home})")
        return EXIT_NOTHING_TO_DO
    answer = "answering" if status.answering else "NOT answering metadata requests"
    print(f"broker: running, pid {status.pid}, {status.bootstrap}, {answer}")
    return 0 if status.answering else 1


def _fetch(args: argparse.Namespace) -> int:
    print(f"Kafka jars in {fetch_jars()}")
    return 0


def admin_session(settings: Settings) -> AbstractContextManager[AccessAdmin]:
    """An admin session: the configured credentials (SASL user or TLS client certificate),
    else the local secure broker's admin."""
    if settings.sasl_username is not None or settings.security_protocol() != "PLAINTEXT":
        return AccessAdmin.connect(settings.bootstrap_servers, settings.kafka_security())
    broker = local_broker(settings)
    if broker.formatted_secure():
        return AccessAdmin.connect(broker.bootstrap, broker.admin_client_config())
    raise BrokerSecurityError(
        "no administrator credentials: set MAXLAKE_SASL_USERNAME and MAXLAKE_SASL_PASSWORD to a "
        "super user of your cluster, or start the local broker with `maxlake broker start "
        "--secure`"
    )


def print_password(name: str, password: str) -> None:
    print(f"user {name}: password {password}")
    print("shown once: maxlake stores it nowhere; hand it to the plant or worker operator now")


def _users_add(args: argparse.Namespace) -> int:
    return _new_password(args.name, existing=False)


def _users_rotate(args: argparse.Namespace) -> int:
    return _new_password(args.name, existing=True)


def _new_password(name: str, *, existing: bool) -> int:
    """Generate and set a password for a new (or, rotating, an existing) user; print it once."""
    with admin_session(Settings()) as admin:
        exists = name in admin.users()
        if exists and not existing:
            raise BrokerSecurityError(
                f"user {name!r} exists; `maxlake broker users rotate {name}` replaces its password"
            )
        if existing and not exists:
            raise BrokerSecurityError(f"no user {name!r}; `maxlake broker users add {name}` first")
        password = generate_password()
        admin.set_password(name, password)
    print_password(name, password)
    return 0


def _users_delete(args: argparse.Namespace) -> int:
    with admin_session(Settings()) as admin:
        if args.name not in admin.users():
            print(f"maxlake: no user {args.name!r}", file=sys.stderr)
            return EXIT_NOTHING_TO_DO
        admin.delete_user(args.name)
        revoked = admin.revoke(args.name)
    print(f"user {args.name} deleted with {len(revoked)} ACL(s)")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    with admin_session(Settings()) as admin:
        for name in admin.users():
            print(name)
    return 0


def _grant_plant(args: argparse.Namespace) -> int:
    settings = Settings()
    acls = plant_acls(args.user, topic_prefix=settings.topic_prefix, tenant=args.tenant)
    with admin_session(settings) as admin:
        _print_acls(admin.grant(acls))
    return 0


def _grant_worker(args: argparse.Namespace) -> int:
    settings = Settings()
    acls = worker_acls(
        args.user,
        topic_prefix=settings.topic_prefix,
        group_prefix=args.group or settings.group_id,
        tenants=args.tenant,
    )
    with admin_session(settings) as admin:
        _print_acls(admin.grant(acls))
    return 0


def _acls_list(args: argparse.Namespace) -> int:
    with admin_session(Settings()) as admin:
        _print_acls(admin.acls(args.user))
    return 0


def _acls_revoke(args: argparse.Namespace) -> int:
    with admin_session(Settings()) as admin:
        revoked = admin.revoke(args.user)
    _print_acls(revoked)
    print(f"{len(revoked)} ACL(s) of {args.user} deleted")
    return 0


def _print_acls(entries: Iterable[AclEntry]) -> None:
    for e in entries:
        print(
            f"{e.principal}\t{e.permission} {e.operation}\t{e.resource_type} "
            f"{e.pattern_type} {e.resource_name!r}\thost {e.host}"
        )
