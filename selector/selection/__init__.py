"""Which samples a generation sends to labelers: step fingerprints, parameters, `select`."""

from selector.selection.fingerprint import (
    FINGERPRINT_DTYPE,
    fingerprints_to_array,
    normalize_steps,
    steps_fingerprint,
)
from selector.selection.params import STRATEGIES, SelectionParams, Strategy
from selector.selection.select import Picks, select, select_with_phases

__all__ = [
    "FINGERPRINT_DTYPE",
    "STRATEGIES",
    "Picks",
    "SelectionParams",
    "Strategy",
    "fingerprints_to_array",
    "normalize_steps",
    "select",
    "select_with_phases",
    "steps_fingerprint",
]
