"""A stable hash hold-out of problem keys (no Django): shared by the loop and the simulator."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def unit_hash(key: str) -> float:
    """A key's fixed position in [0, 1)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def validation_keys(keys: Iterable[str], fraction: float) -> set[str]:
    """The held-out subset of problem keys: those whose hash falls below `fraction`.

    Stable as keys are added (a key's membership never changes), so every checkpoint of a
    campaign is validated on problems none of them trained on. With fewer than two keys
    nothing is held out; when the hash picks none of two or more, the lowest-hash key is;
    at least one key always stays for training.
    """
    keys = sorted(set(keys))
    if fraction <= 0 or len(keys) < 2:
        return set()
    held = {k for k in keys if unit_hash(k) < fraction}
    if not held:
        held = {min(keys, key=unit_hash)}
    if len(held) == len(keys):
        held.discard(max(keys, key=unit_hash))
    return held
