"""Step fingerprints: the dedup key stored on each Sample at import (16-byte BLAKE2b)."""

from __future__ import annotations

import hashlib

import numpy as np

FINGERPRINT_SIZE = 16
FINGERPRINT_DTYPE = np.dtype(f"S{FINGERPRINT_SIZE}")
# Domain separation: a different normalisation in future gets a different person string.
_FINGERPRINT_PERSON = b"stepwise-steps-1"
# The ASCII characters str.split() treats as whitespace, other than the space itself.
_ASCII_WHITESPACE = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
_TO_SPACE = bytes.maketrans(_ASCII_WHITESPACE, b" " * len(_ASCII_WHITESPACE))
_STEP_END = "\x00"  # not whitespace, so collapsing runs of whitespace never crosses a step end
_SPACE, _END = ord(" "), ord(_STEP_END)


def normalize_steps(steps: list[str]) -> str:
    """Strip each step, collapse every run of whitespace to one space, end each step with "\\n".

    After collapsing, no step contains a newline, so "\\n" is a separator that cannot occur in a
    step; terminating (rather than joining) keeps ``[]`` and ``[""]`` distinct.
    """
    return _normalized_bytes(steps).decode("utf-8", "surrogatepass")


def _normalized_bytes(steps: list[str]) -> bytes:
    """`normalize_steps` encoded (UTF-8, surrogates passed): the ASCII path where it applies."""
    if isinstance(steps, str):
        raise TypeError("steps must be a list of strings, not a string")
    fast = _normalize_ascii(steps)
    return fast if fast is not None else _normalize_any(steps).encode("utf-8", "surrogatepass")


def _normalize_any(steps: list[str]) -> str:
    """The reference normalisation: any text, any step type (str() of each)."""
    return "".join(" ".join(str(step).split()) + "\n" for step in steps)


def _normalize_ascii(steps: list[str]) -> bytes | None:
    """`_normalize_any(steps)` encoded, for ASCII text: whole-text array passes instead of a
    split per step, whose ~500 word strings a sample cost twice as long; None where it does
    not apply (not a list of str, empty, non-ASCII, or a NUL inside a step)."""
    if not isinstance(steps, list | tuple) or not steps:  # a generator: one join would use it
        return None
    try:
        text = _STEP_END.join(steps)
    except TypeError:  # a step that is not a str: only the reference path str()s it
        return None
    if not text.isascii() or text.count(_STEP_END) != len(steps) - 1:
        return None
    chars = np.frombuffer(text.encode("ascii").translate(_TO_SPACE), np.uint8)
    space = chars == _SPACE
    first_space = ~space
    first_space[1:] |= space[1:] & first_space[:-1]  # non-spaces and the first of each run
    chars = chars[first_space]
    # A space now stands alone; it stays only between two word characters of one step.
    word = np.zeros(len(chars) + 2, dtype=bool)
    word[1:-1] = (chars != _SPACE) & (chars != _END)
    chars = chars[(chars != _SPACE) | (word[:-2] & word[2:])]
    return chars.tobytes().replace(_STEP_END.encode("ascii"), b"\n") + b"\n"


def steps_fingerprint(steps: list[str]) -> bytes:
    """16-byte BLAKE2b digest of `normalize_steps`; identical across processes and versions."""
    data = _normalized_bytes(steps)
    return hashlib.blake2b(data, digest_size=FINGERPRINT_SIZE, person=_FINGERPRINT_PERSON).digest()


def fingerprints_to_array(digests: list[bytes] | tuple[bytes, ...]) -> np.ndarray:
    """Pack 16-byte digests (e.g. read from the database) into a ``FINGERPRINT_DTYPE`` array."""
    digests = [bytes(d) for d in digests]
    bad = next((i for i, d in enumerate(digests) if len(d) != FINGERPRINT_SIZE), None)
    if bad is not None:
        raise ValueError(f"fingerprint {bad} is {len(digests[bad])} bytes, not {FINGERPRINT_SIZE}")
    # frombuffer keeps all 16 bytes; np.array(list, 'S16') would too, but is slower on 10^7 rows.
    return np.frombuffer(b"".join(digests), dtype=FINGERPRINT_DTYPE).copy()
