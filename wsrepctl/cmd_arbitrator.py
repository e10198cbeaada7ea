"""`wsrepctl arbitrator`: a voting group member with no database, like Galera's garbd.

It takes part in quorum (so two data nodes plus an arbitrator survive losing either data
node), receives and drops the payloads, logs view changes, and exits cleanly on SIGTERM or
SIGINT. Its log and term/vote live in `--gcache-dir` (required): a restarted arbitrator
must remember whom it voted for, or two leaders could be elected in one term.
"""

from __future__ import annotations

import argparse
import logging

import trio

from wsrep.group.types import ViewChange
from wsrep.group_node import GroupNode
from wsrepctl.cmd_group_member import add_member_arguments, run_member

log = logging.getLogger("wsrep.arbitrator")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "arbitrator", help="run a voting member with no database (garbd)", description=__doc__
    )
    add_member_arguments(parser, gcache_required=True)
    parser.set_defaults(func=lambda args: run_member(args, True, _follow))


async def _follow(node: GroupNode, nursery: trio.Nursery) -> None:
    """Drain the event stream; views are logged by the driver, payloads are dropped."""
    while True:
        try:
            batch = await node.next_events()
        except trio.EndOfChannel:
            return
        for event in batch:
            if isinstance(event, ViewChange) and not event.view.primary:
                log.warning("%s: not in a primary component", node.config.member.id)
