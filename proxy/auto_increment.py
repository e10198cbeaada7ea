"""Galera's `wsrep_auto_increment_control`: nodes never hand out the same auto-increment id.

In every primary view, node i (1-based, in the view's member order, which is the same on
every node) uses `auto_increment_increment` = cluster size and `auto_increment_offset` =
i, so node i's ids are i, i + n, i + 2n, ...: concurrent inserts on different nodes never
collide on the key, which would otherwise fail certification (1213). Outside a primary
view the last values stay, as in Galera. While a view change reaches the nodes one by
one, two nodes can briefly use overlapping series; a collision then is a certification
failure (1213), never a lost or duplicated row.

The values go to the backend's GLOBAL variables (sessions that connect later start with
them) and, through admission, to every proxy session before its next statement (a
backend session keeps the values it connected with).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from proxy.backend_client import BackendClient, BackendError
from proxy.capture.mariadb_sql import set_auto_increment
from wsrep.group.types import View

log = logging.getLogger("wsrep.auto_increment")

RETRY_DELAY = 1.0


def auto_increment_for(view: View | None) -> tuple[int, int] | None:
    """(increment, offset) for this node in `view`; None unless it is a primary member."""
    if view is None or not view.primary or view.own_index < 0:
        return None
    return len(view.members), view.own_index + 1


class AutoIncrementControl:
    """The values sessions must use now (`values`), and the task (`run`) that keeps the
    backend's global values equal to them. Call `view_changed()` on every view."""

    def __init__(
        self,
        view: Callable[[], View | None],
        connect: Callable[[], Awaitable[BackendClient]],
        node_name: str,
    ) -> None:
        self._view = view
        self._connect = connect
        self._name = node_name
        self.values: tuple[int, int] | None = None
        self.global_values: tuple[int, int] | None = None  # last SET GLOBAL that succeeded
        self._changed = trio.Event()

    def view_changed(self) -> None:
        wanted = auto_increment_for(self._view())
        if wanted is None or wanted == self.values:
            return
        log.info("%s: auto_increment_increment %d, auto_increment_offset %d", self._name, *wanted)
        self.values = wanted
        self._changed.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._changed.wait()
            self._changed = trio.Event()
            while self.values is not None and self.global_values != self.values:
                values = self.values
                try:
                    async with await self._connect() as admin:
                        await admin.query(set_auto_increment("GLOBAL", *values))
                    self.global_values = values
                except (BackendError, OSError) as exc:
                    log.warning("%s: cannot set the global auto_increment: %s", self._name, exc)
                    await trio.sleep(RETRY_DELAY)
