"""Step fingerprints: the dedup key stored on each Sample at import (16-byte BLAKE2b)."""

from __future__ import annotations

import hashlib

import numpy as np

FINGERPRINT_SIZE = 16
FINGERPRINT_DTYPE = np.dtype(f"S{FINGERPRINT_SIZE}")
# Domain separation: a different normalisation in future gets a different person string.
_FINGERPRINT_PERSON = b"stepwise-steps-1"


def normalize_steps(steps: list[str]) -> str:
    """Strip each step, collapse every run of whitespace to one space, end each step with "\\n".

    After collapsing, no step contains a newline, so "\\n" is a separator that cannot occur in a
    step; terminating (rather than joining) keeps ``[]`` and ``[""]`` distinct.
    """
    if isinstance(steps, str):
        raise TypeError("steps must be a list of strings, not a string")
    return "".join(" ".join(str(step).split()) + "\n" for step in steps)


def steps_fingerprint(steps: list[str]) -> bytes:
    """16-byte BLAKE2b digest of `normalize_steps`; identical across processes and versions."""
    data = normalize_steps(steps).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=FINGERPRINT_SIZE, person=_FINGERPRINT_PERSON).digest()


def fingerprints_to_array(digests: list[bytes] | tuple[bytes, ...]) -> np.ndarray:
    """Pack 16-byte digests (e.g. read from the database) into a ``FINGERPRINT_DTYPE`` array."""
    digests = [bytes(d) for d in digests]
    bad = next((i for i, d in enumerate(digests) if len(d) != FINGERPRINT_SIZE), None)
    if bad is not None:
        raise ValueError(f"fingerprint {bad} is {len(digests[bad])} bytes, not {FINGERPRINT_SIZE}")
    # frombuffer keeps all 16 bytes; np.array(list, 'S16') would too, but is slower on 10^7 rows.
    return np.frombuffer(b"".join(digests), dtype=FINGERPRINT_DTYPE).copy()
