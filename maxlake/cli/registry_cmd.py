"""``maxlake registry``: show, diff and change the live asset registry under the lake root.

Every change is dry-run by default: it prints the diff and writes nothing. ``--yes`` stores it
as a new version with its author, time and ``--reason``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from lake.location import LakeLocation
from lake.registry_store import RegistryStore, RegistryVersion, RetypeRefused
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas import RegistryError, registry_json_schema
from schemas.registry_diff import diff_documents, merge_documents


def register(sub: Any) -> None:
    """Add the ``registry`` command group."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "registry",
        help="the asset registry: show, history, diff, apply, add-* (versioned in the lake)",
        description="The live asset registry, versioned under the lake root. Changes are "
        "dry-run by default (the diff is printed); --yes stores a new version.",
    )
    cmds = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    show = cmds.add_parser("show", help="print one version as TOML (default: the newest)")
    show.add_argument("--version", type=int, default=None, help="version number (0 = seed)")
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    show.set_defaults(handler=_show)

    history = cmds.add_parser("history", help="list every version: who, when, why")
    history.set_defaults(handler=_history)

    diff = cmds.add_parser("diff", help="what changed from version A to version B")
    diff.add_argument("a", type=int, help="older registry version number")
    diff.add_argument("b", type=int, help="newer registry version number")
    diff.set_defaults(handler=_diff)

    schema = cmds.add_parser("schema", help="print the JSON Schema of the registry TOML format")
    schema.add_argument("--out", type=Path, default=None, help="write to this file instead")
    schema.set_defaults(handler=_schema)

    apply = cmds.add_parser(
        "apply",
        help="merge a (partial) TOML registry file into the newest version",
        description="Entries of FILE are added or update the entries with the same ids; "
        "nothing is removed unless --replace takes FILE as the whole registry.",
    )
    apply.add_argument(
        "file", type=Path, help="complete registry TOML file to store as the next version"
    )
    apply.add_argument("--replace", action="store_true", help="FILE is the whole registry")
    _change_options(apply)
    apply.set_defaults(handler=_apply)

    machine = cmds.add_parser("add-machine", help="add a machine to a line (created if new)")
    machine.add_argument("tenant", help="tenant (company) id")
    machine.add_argument("plant", help="plant (site) id of the tenant")
    machine.add_argument("line", help="line (work centre) id of the plant")
    machine.add_argument("machine", help="new machine (work unit) id")
    machine.add_argument("--type", required=True, dest="machine_type", help="machine type id")
    _change_options(machine)
    machine.set_defaults(handler=_add_machine)

    tag = cmds.add_parser("add-tag", help="add a tag to a machine type")
    tag.add_argument("machine_type", help="machine type the tag belongs to")
    tag.add_argument("tag", help="new tag name")
    tag.add_argument("--unit", required=True, help="pint unit, e.g. degC, l/min, %%")
    tag.add_argument("--min", type=float, required=True, dest="lo", help="physical minimum")
    tag.add_argument("--max", type=float, required=True, dest="hi", help="physical maximum")
    tag.add_argument("--nominal", type=float, required=True, help="nominal operating value")
    _change_options(tag)
    tag.set_defaults(handler=_add_tag)

    unit = cmds.add_parser("add-unit", help="define a unit, e.g. add-unit spm '1 / minute'")
    unit.add_argument("symbol", help="unit symbol as plants send it")
    unit.add_argument("definition", help="pint expression in known units")
    unit.add_argument("--description", default="", help="what the unit measures")
    _change_options(unit)
    unit.set_defaults(handler=_add_unit)

    alarm = cmds.add_parser("add-alarm", help="add an alarm code to a machine type")
    alarm.add_argument("machine_type", help="machine type raising the alarm")
    alarm.add_argument("code", help="new alarm code")
    alarm.add_argument("--severity", type=int, required=True, help="OPC UA 1..1000")
    alarm.add_argument("--text", required=True, help="alarm text shown to operators")
    _change_options(alarm)
    alarm.set_defaults(handler=_add_alarm)

    defect = cmds.add_parser("add-defect-code", help="add a defect code to a machine type")
    defect.add_argument("machine_type", help="machine type whose inspections use the code")
    defect.add_argument("code", help="new defect code")
    _change_options(defect)
    defect.set_defaults(handler=_add_defect)


def _change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="store the change (default: dry run)")
    parser.add_argument("--reason", default="", help="why (required with --yes)")
    parser.add_argument(
        "--author", default=None, help="who (default: the OS user @ host running the command)"
    )
    parser.add_argument(
        "--migration",
        default=None,
        help="note required to change a tag's unit or a machine's type: how old and new rows "
        "are told apart",
    )


def _store() -> RegistryStore:
    settings = Settings()
    return RegistryStore(LakeLocation.from_settings(settings))


def _show(args: argparse.Namespace) -> int:
    current = _store().get(args.version)
    doc = current.registry.document()
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"# registry version {current.version}: {_who(current)}")
    print(tomli_w.dumps(doc), end="")
    return 0


def _who(v: RegistryVersion) -> str:
    if v.version == 0:
        return f"packaged seed ({v.registry.source})"
    note = f"; migration: {v.migration}" if v.migration else ""
    return f"{v.at} by {v.author}: {v.reason}{note}"


def _history(args: argparse.Namespace) -> int:
    for v in _store().history():
        print(f"v{v.version:<4} {_who(v)}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    store = _store()
    before, after = store.get(args.a), store.get(args.b)
    changes = diff_documents(before.registry.document(), after.registry.document())
    for change in changes:
        print(change)
    print(f"{len(changes)} change(s) from version {args.a} to {args.b}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(registry_json_schema(), indent=2) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def read_fragment(path: Path) -> dict[str, Any]:
    """A (partial) registry TOML file, parsed.

    Raises:
        ConfigError: unreadable; RegistryError: not TOML.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(str(path), "file", f"not valid TOML: {exc}") from exc


def _apply(args: argparse.Namespace) -> int:
    partial = read_fragment(args.file)
    return _change(args, partial, replace=args.replace, source=str(args.file))


def _add_machine(args: argparse.Namespace) -> int:
    machine = {"id": args.machine, "machine_type": args.machine_type}
    line: dict[str, Any] = {"id": args.line, "machines": [machine]}
    registry = _store().get().registry
    tenant = registry.tenant(args.tenant)
    if tenant is None:
        raise ConfigError(
            f"unknown tenant {args.tenant!r}: onboard it first (maxlake tenants onboard) or "
            "add it with `maxlake registry apply FILE`"
        )
    plant = next((p for p in tenant.plants if p.id == args.plant), None)
    if plant is None:
        raise ConfigError(
            f"tenant {args.tenant!r} has no plant {args.plant!r} (plants: "
            f"{', '.join(p.id for p in tenant.plants)}); add it with `maxlake registry apply FILE`"
        )
    if all(ln.id != args.line for ln in plant.lines):
        line["name"] = args.line
    partial = {"tenants": [{"id": args.tenant, "plants": [{"id": args.plant, "lines": [line]}]}]}
    return _change(args, partial)


def _add_tag(args: argparse.Namespace) -> int:
    spec = {"tag": args.tag, "unit": args.unit, "min": args.lo, "max": args.hi}
    spec["nominal"] = args.nominal
    return _change(args, {"machine_types": {args.machine_type: {"tags": [spec]}}})


def _add_unit(args: argparse.Namespace) -> int:
    unit = {"symbol": args.symbol, "definition": args.definition}
    if args.description:
        unit["description"] = args.description
    return _change(args, {"units": [unit]})


def _add_alarm(args: argparse.Namespace) -> int:
    alarm = {"code": args.code, "severity": args.severity, "text": args.text}
    return _change(args, {"machine_types": {args.machine_type: {"alarms": [alarm]}}})


def _add_defect(args: argparse.Namespace) -> int:
    return _change(args, {"machine_types": {args.machine_type: {"defect_codes": [args.code]}}})


def _change(
    args: argparse.Namespace,
    partial: dict[str, Any],
    *,
    replace: bool = False,
    source: str = "<command line>",
) -> int:
    store = _store()
    base = store.get()
    document = (
        partial if replace else merge_documents(base.registry.document(), partial, source=source)
    )
    changes = store.plan(document, base=base)
    for change in changes:
        flag = f"   (re-types rows: {change.retypes})" if change.retypes else ""
        print(f"{change}{flag}")
    if not changes:
        print(f"no change: the result equals version {base.version}")
        return 0
    retyping = [c for c in changes if c.retypes]
    if not args.yes:
        needs = " --migration '...'" if retyping and not args.migration else ""
        print(
            f"dry run: {len(changes)} change(s) against version {base.version}; "
            f"re-run with --yes --reason '...'{needs} to store them",
            file=sys.stderr,
        )
        if needs:
            print(f"without --migration it would be {RetypeRefused(retyping)}", file=sys.stderr)
        return 0
    author = args.author or f"{getpass.getuser()}@{socket.gethostname()}"
    stored = store.commit(
        document, base=base, author=author, reason=args.reason, migration=args.migration
    )
    print(f"stored registry version {stored.version} ({len(changes)} change(s))")
    return 0
