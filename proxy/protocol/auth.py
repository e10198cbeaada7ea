"""Client-side authentication plugins the proxy's own backend client speaks."""

from __future__ import annotations

import hashlib

NATIVE_PASSWORD = b"mysql_native_password"


def native_password(password: bytes, scramble: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password).digest()
    stage2 = hashlib.sha1(stage1).digest()
    mix = hashlib.sha1(scramble[:20] + stage2).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix, strict=True))


CLIENT_ED25519 = b"client_ed25519"

# Ed25519 (RFC 8032) over the twisted Edwards curve, in extended coordinates (X, Y, Z, T).
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493
_Point = tuple[int, int, int, int]


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    pa = (y1 - x1) * (y2 - x2) % _P
    pb = (y1 + x1) * (y2 + x2) % _P
    pc = 2 * t1 * t2 * _D % _P
    pd = 2 * z1 * z2 % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _scalar_mult(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: _Point) -> bytes:
    x, y, z, _ = point
    inv = pow(z, _P - 2, _P)
    x, y = x * inv % _P, y * inv % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _base() -> _Point:
    y = 4 * pow(5, _P - 2, _P) % _P
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * pow(2, (_P - 1) // 4, _P) % _P
    if x & 1:
        x = _P - x
    return x, y, 1, x * y % _P


_BASE = _base()


def _sha512_int(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


def ed25519_password(password: bytes, scramble: bytes) -> bytes:
    """MariaDB's client_ed25519: an Ed25519 signature of the server's scramble whose
    secret is SHA-512 of the password itself (where RFC 8032 hashes a 32-byte seed)."""
    digest = hashlib.sha512(password).digest()
    a = int.from_bytes(digest[:32], "little")
    a = (a & ~7 & ((1 << 254) - 1)) | (1 << 254)
    public = _encode(_scalar_mult(a, _BASE))
    r = _sha512_int(digest[32:], scramble) % _L
    big_r = _encode(_scalar_mult(r, _BASE))
    s = (r + _sha512_int(big_r, public, scramble) * a) % _L
    return big_r + s.to_bytes(32, "little")
