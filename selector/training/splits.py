"""Which problems are held out for validation: whole problems, never single solutions.

`validation_keys` is a stable hash hold-out (a key's membership never changes as keys are
added), shared by the retraining loop and the simulator; `split_by_problem` is the trainer's
own seeded (or explicit) hold-out.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Iterable, Sequence

from selector.training.examples import TrainingExample


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


def split_by_problem(
    examples: Sequence[TrainingExample], val_problems: float | Collection[str], seed: int
) -> tuple[list[TrainingExample], list[TrainingExample], list[str]]:
    """Hold out whole problems: a seeded fraction of the distinct keys, or an explicit set."""
    keys = sorted({e.key for e in examples})
    if isinstance(val_problems, int | float) and not isinstance(val_problems, bool):
        if not 0 <= val_problems < 1:
            raise ValueError("a validation fraction must be in [0, 1)")
        n_val = round(val_problems * len(keys))
        if val_problems > 0 and len(keys) > 1:
            n_val = min(max(n_val, 1), len(keys) - 1)
        held = set(random.Random(seed).sample(keys, n_val))
    else:
        held = set(val_problems)
    train = [e for e in examples if e.key not in held]
    val = [e for e in examples if e.key in held]
    return train, val, sorted(held & set(keys))
