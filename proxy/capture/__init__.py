"""Row-based write-set capture and apply on MariaDB (see docs/design/capture.md).

Origin: `install()` once, then per transaction `drain()` at commit (same connection, same
transaction) and `record_position()` before COMMIT. Other nodes: `prepare_applier_session()`
once per connection, then `apply_write_set()` per decoded write set.
"""

from proxy.capture.applier import (
    apply_changes,
    apply_write_set,
    commit_at,
    prepare_applier_session,
)
from proxy.capture.catalog import Catalog, load_catalog
from proxy.capture.drain import CapturedRows, CaptureError, discard, drain
from proxy.capture.install import drop_capture, follow, install, install_table, uninstall
from proxy.capture.position import Position, read_position, record_position
from proxy.capture.rowimage import (
    Kind,
    Op,
    RowChange,
    RowImageError,
    TableSpec,
    decode_changes,
    encode_changes,
)
from proxy.capture.session import SqlSession
from proxy.capture.shape import NotReplicable, TableShape

__all__ = [
    "CaptureError",
    "CapturedRows",
    "Catalog",
    "Kind",
    "NotReplicable",
    "Op",
    "Position",
    "RowChange",
    "RowImageError",
    "SqlSession",
    "TableShape",
    "TableSpec",
    "apply_changes",
    "apply_write_set",
    "commit_at",
    "decode_changes",
    "discard",
    "drain",
    "drop_capture",
    "encode_changes",
    "follow",
    "install",
    "install_table",
    "load_catalog",
    "prepare_applier_session",
    "read_position",
    "record_position",
    "uninstall",
]
