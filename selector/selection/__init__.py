"""Which samples a generation sends to labelers: step fingerprints, parameters, `select`,
and the uniform control arm (`select_arms`)."""

from selector.selection.fingerprint import (
    FINGERPRINT_DTYPE,
    fingerprints_to_array,
    normalize_steps,
    steps_fingerprint,
)
from selector.selection.params import STRATEGIES, SelectionParams, Strategy
from selector.selection.select import Picks, eligible, select, select_with_phases
from selector.selection.uniform import Arms, draw_uniform, select_arms, uniform_slots

__all__ = [
    "FINGERPRINT_DTYPE",
    "STRATEGIES",
    "Arms",
    "Picks",
    "SelectionParams",
    "Strategy",
    "draw_uniform",
    "eligible",
    "fingerprints_to_array",
    "normalize_steps",
    "select",
    "select_arms",
    "select_with_phases",
    "steps_fingerprint",
    "uniform_slots",
]
