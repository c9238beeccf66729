"""Secure aggregation by pairwise masking (Bonawitz et al., CCS 2017), without dropouts.

Each participating factory holds an X25519 key pair (``state/pool-key``, 0600) and
knows the other participants' public keys from its own config (exchanged once by the
admins, like SSH's known hosts, so a researcher cannot slip in a key of their own).
For a pooling round, factories ``i`` and ``j`` derive the same secret
``HKDF(X25519(i, j), round)`` and expand it into a mask vector; ``i`` adds it, ``j``
subtracts it. Every value is encoded in fixed point in the ring of integers modulo
``2**64``, so a masked vector is uniform there and the masks cancel exactly in the sum
of all participants' vectors. A missing participant leaves the others' masks in: the
pooled answer is then refused, never approximated.

Examples
--------
>>> keys = {name: generate_key() for name in ("factory-a", "factory-b", "factory-c")}
>>> public = {name: public_key_hex(key) for name, key in keys.items()}
>>> values = {"factory-a": [1.5, 2.0], "factory-b": [3.25, 0.0], "factory-c": [0.0, -1.0]}
>>> released = {
...     name: masked_vector(values[name], keys[name], name, public, "round-1")
...     for name in keys
... }
>>> unmasked_sum(list(released.values()))
[4.75, 1.0]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from workbench.errors import WorkbenchError

KEY_FILE = "pool-key"
SCALE = 1 << 20  # fixed point: values to about 1e-6, magnitudes to about 8.8e12
MODULUS_BITS = 64


def generate_key() -> X25519PrivateKey:
    """A fresh X25519 private key."""
    return X25519PrivateKey.generate()


def load_or_create_key(state_dir: str | Path) -> X25519PrivateKey:
    """The factory's pooling key from its state folder, created (0600) on first use."""
    path = Path(state_dir) / KEY_FILE
    if not path.exists():
        raw = generate_key().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(raw.hex())
    try:
        return X25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    except ValueError:
        raise WorkbenchError(f"{path}: not a pooling key (32 bytes in hex)") from None


def public_key_hex(key: X25519PrivateKey) -> str:
    """The public half of `key`, as 64 hex digits (what the other admins configure)."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        .hex()
    )


def encode(values: Sequence[float]) -> np.ndarray:
    """Fixed-point encoding of `values` in the ring modulo 2**64 (as uint64)."""
    scaled = np.round(np.asarray(values, dtype=np.float64) * SCALE)
    if np.any(np.abs(scaled) >= 2.0 ** (MODULUS_BITS - 1)):
        raise WorkbenchError("a pooled value is too large for the fixed-point encoding")
    return scaled.astype(np.int64).view(np.uint64)


def decode(ring: np.ndarray) -> list[float]:
    """Inverse of :func:`encode` (sums of encodings decode to the sum of the values)."""
    return (np.asarray(ring, dtype=np.uint64).view(np.int64) / SCALE).tolist()


def masked_vector(
    values: Sequence[float],
    key: X25519PrivateKey,
    me: str,
    participants: Mapping[str, str],
    round_id: str,
) -> list[int]:
    """`values` encoded and masked for one pooling round; plain ints for release.

    Parameters
    ----------
    values : sequence of float
        This factory's aggregate vector.
    key : X25519PrivateKey
        This factory's pooling key.
    me : str
        This factory's name (a key of `participants`).
    participants : mapping
        ``{factory: public key hex}`` of every participant, this factory included.
    round_id : str
        Unique per pooling request (masks are never reused across rounds).
    """
    if me not in participants or len(participants) < 2:
        raise WorkbenchError("a pooling round needs this factory and at least one other")
    if participants[me] != public_key_hex(key):
        raise WorkbenchError(f"{me}: the round names another public key for this factory")
    ring = encode(values)
    with np.errstate(over="ignore"):
        for other in sorted(participants):
            if other == me:
                continue
            mask = _pair_mask(key, participants[other], round_id, len(ring))
            ring = ring + mask if me < other else ring - mask
    return [int(v) for v in ring]


def unmasked_sum(vectors: Sequence[Sequence[int]]) -> list[float]:
    """The pooled sum of every participant's masked vector (all of them, or nonsense)."""
    lengths = {len(vector) for vector in vectors}
    if len(lengths) != 1:
        raise WorkbenchError("the masked vectors differ in length: not one pooling round")
    total = np.zeros(lengths.pop(), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for vector in vectors:
            total = total + np.asarray([int(v) for v in vector], dtype=np.uint64)
    return decode(total)


def _pair_mask(key: X25519PrivateKey, other_public_hex: str, round_id: str, n: int) -> np.ndarray:
    shared = key.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(other_public_hex)))
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"workbench-pool:{round_id}".encode()
    ).derive(shared)
    # The ChaCha20 key stream of the shared secret: both sides expand it alike, and it is
    # indistinguishable from uniform without the secret.
    stream = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    return np.frombuffer(stream.update(bytes(8 * n)), dtype="<u8").astype(np.uint64)
