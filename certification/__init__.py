"""Certification: write-set keys, the deterministic certification index, size limits.

Pure code, no I/O: the same ordered stream gives the same verdicts on every node.
"""

from certification.index import (
    CertificationIndex,
    CertificationRequest,
    CertificationStats,
    Outcome,
    Verdict,
)
from certification.keys import Key, KeyFormatError, KeyKind, decode_key, row_key, table_key
from certification.limits import WriteSetLimits, WriteSetTooLarge

__all__ = [
    "CertificationIndex",
    "CertificationRequest",
    "CertificationStats",
    "Key",
    "KeyFormatError",
    "KeyKind",
    "Outcome",
    "Verdict",
    "WriteSetLimits",
    "WriteSetTooLarge",
    "decode_key",
    "row_key",
    "table_key",
]
