"""Two nodes are two processes, each with its own string-hash seed: verdicts must not
depend on it (no dict or set iteration order may leak into a verdict or a purge)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

from certification import (
    CertificationIndex,
    CertificationRequest,
    KeyKind,
    Verdict,
    row_key,
    table_key,
)

WRITE_SETS = 3_000
REPO = Path(__file__).resolve().parents[2]


def stream_digest(seed: int) -> str:
    """Certify a seeded random stream with purges; digest every verdict and the stats."""
    rng = random.Random(seed)
    index = CertificationIndex()
    verdicts: list[Verdict] = []
    for seqno in range(1, WRITE_SETS + 1):
        keys = tuple(
            table_key("s", f"t{rng.randrange(4)}")
            if rng.random() < 0.02
            else row_key(
                "s",
                f"t{rng.randrange(4)}",
                "PRIMARY",
                [str(rng.randrange(200)).encode()],
                KeyKind.SHARED if rng.random() < 0.2 else KeyKind.EXCLUSIVE,
            )
            for _ in range(rng.randrange(1, 6))
        )
        verdicts.append(
            index.certify(CertificationRequest(seqno, seqno - rng.randint(1, 30), keys))
        )
        if seqno % 50 == 0:
            index.purge(seqno - rng.randrange(10, 40))
    return hashlib.sha256(repr((verdicts, index.stats)).encode()).hexdigest()


def test_verdicts_do_not_depend_on_the_hash_seed() -> None:
    code = (
        "from tests.certification.test_cert_processes import stream_digest; print(stream_digest(7))"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert digests == {stream_digest(7)}


def test_the_digest_sees_the_verdicts() -> None:
    assert stream_digest(7) != stream_digest(8)
