"""``maxlake groups list|delete``: the broker's consumer groups, and deleting a stale one.

Exit codes: 0 done; 1 an error or nothing deleted (no ``--yes``, the lake's own group, a group
with members, no such group).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from maxlake.cli.table import render_table
from maxlake.errors import ConfigError
from maxlake.settings import Settings
from streams.groups import (
    GroupInfo,
    companion_group,
    consumer_groups,
    delete_group,
    delete_leader_topic,
    describe_group,
    group_ids,
    leader_topic,
)
from streams.topics import require_broker


def register(sub: Any) -> None:
    """Add ``groups``."""
    groups: argparse.ArgumentParser = sub.add_parser(
        "groups", help="consumer groups: list them, delete a stale one"
    )
    actions = groups.add_subparsers(dest="groups_action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="every consumer group: state, members, partitions of the lake's topics committed",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per group, in a list")
    listing.set_defaults(handler=_list)
    delete = actions.add_parser(
        "delete",
        help="delete a consumer group and its committed offsets (a stale ingest group)",
        description="Delete GROUP and its committed offsets (Kafka's DeleteGroups). For a group "
        "left behind when a lake's MAXLAKE_GROUP_ID changed: the lake's positions come from the "
        "lake, not from the group. Refused for the group MAXLAKE_GROUP_ID names and for a group "
        "with members. Without --yes it only says what it would delete. See docs/OPERATIONS.md, "
        "'shared_consumer_group'.",
    )
    delete.add_argument("group", help="the consumer group, e.g. maxlake-ingest")
    delete.add_argument("--yes", action="store_true", help="delete (without it: only show)")
    delete.set_defaults(handler=_delete)


def _list(args: argparse.Namespace) -> int:
    settings = Settings()
    require_broker(settings)
    groups = consumer_groups(settings)
    if args.json:
        print(
            json.dumps(
                [{**asdict(g), "lake_group": g.group_id == settings.group_id} for g in groups]
            )
        )
        return 0
    if not groups:
        print("no consumer groups on the broker")
        return 0
    rows = [
        (
            g.group_id + (" (MAXLAKE_GROUP_ID)" if g.group_id == settings.group_id else ""),
            g.state,
            g.members,
            g.lake_partitions,
            g.lag,
        )
        for g in groups
    ]
    header = ("group", "state", "members", "partitions", "lag")
    print(render_table(header, rows, right="members partitions lag"))
    print(
        f"partitions: of {settings.topic_prefix}.* topics, with an offset the group committed; "
        "lag: messages behind their ends (a stale group's grows while the lake's keeps up)"
    )
    return 0


def _delete(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.group in (settings.group_id, companion_group(settings.group_id)):
        raise ConfigError(
            f"{args.group!r} is this lake's consumer group (MAXLAKE_GROUP_ID): its workers "
            "and `maxlake status` use it; nothing deleted. To delete it, stop its workers and "
            "run this with MAXLAKE_GROUP_ID set to the group the lake uses now"
        )
    require_broker(settings)
    group = describe_group(settings, args.group)
    app = companion_group(group.group_id)
    companion = describe_group(settings, app) if app in group_ids(settings) else None
    what = _described(settings, group)
    if companion is not None:
        what += f", with its Faust app's group {_described(settings, companion)}"
    busy = [g for g in (group, companion) if g is not None and g.members]
    if busy:
        raise ConfigError(
            f"{what}: {', '.join(repr(g.group_id) for g in busy)} has live members: stop its "
            "workers first; nothing deleted"
        )
    topic = leader_topic(group.group_id)
    if not args.yes:
        print(f"would delete {what}, and the app's leader topic {topic!r} if it exists (no data)")
        print("the lake's data and positions are not touched")
        raise ConfigError("nothing deleted: add --yes to delete it")
    delete_group(settings, group.group_id)
    print(f"deleted {_described(settings, group)}")
    if companion is not None:
        delete_group(settings, companion.group_id)
        print(f"deleted {_described(settings, companion)}")
    if delete_leader_topic(settings, group.group_id):
        print(f"deleted topic {topic!r}")
    return 0


def _described(settings: Settings, group: GroupInfo) -> str:
    return (
        f"consumer group {group.group_id!r} ({group.state}, {group.members} member(s), "
        f"committed offsets for {group.lake_partitions} partition(s) of "
        f"{settings.topic_prefix}.* topics)"
    )
