"""Group-communication transport: authenticated, framed TCP between group members.

- `frames`: length-prefixed, crc32c-checked frames and their decoder (sans-I/O);
- `handshake`: mutual HMAC-SHA256 proof of the cluster secret, identities, cluster uuid;
- `channel`: per-connection keys and a MAC on every message after the handshake;
- `connection`: one peer connection as a sans-I/O state machine (bytes in, events out);
- `tcp`: the trio transport: listen, dial with backoff, one connection per pair;
- `address`, `backoff`: "host:port" / "gcomm://" parsing, reconnect delays.
"""
