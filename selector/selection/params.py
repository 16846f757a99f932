"""How one generation selects: `SelectionParams`, a frozen snapshot stored on the Generation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

import numpy as np

Strategy = Literal["per_problem", "global"]
STRATEGIES: tuple[str, ...] = ("per_problem", "global")


@dataclass(frozen=True)
class SelectionParams:
    """A frozen snapshot of how one generation selects; stored on the Generation as a dict."""

    strategy: Strategy
    k: int
    wrong_fraction: float
    max_per_problem: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer):
            raise TypeError(f"k must be an integer, not {self.k!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, not {self.k}")
        if isinstance(self.wrong_fraction, bool) or not isinstance(
            self.wrong_fraction, int | float | Decimal | Fraction | np.floating | np.integer
        ):
            raise TypeError(f"wrong_fraction must be a number, not {self.wrong_fraction!r}")
        if not math.isfinite(float(self.wrong_fraction)) or not (
            0 <= float(self.wrong_fraction) <= 1
        ):
            raise ValueError(f"wrong_fraction must be in [0, 1], not {self.wrong_fraction}")
        m = self.max_per_problem
        if m is not None:
            if isinstance(m, bool) or not isinstance(m, int | np.integer):
                raise TypeError(f"max_per_problem must be an integer or None, not {m!r}")
            if m < 1:
                raise ValueError(f"max_per_problem must be >= 1 or None, not {m}")
            object.__setattr__(self, "max_per_problem", int(m))
        # Normalise numpy/Decimal/Fraction inputs so snapshots compare and serialise as plain
        # Python; n_wrong reads the float's shortest repr, so 0.15 still means exactly 3/20.
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "wrong_fraction", float(self.wrong_fraction))

    @property
    def n_wrong(self) -> int:
        """``floor(wrong_fraction * k + 1/2)``, computed exactly (see module docstring, item 3)."""
        # repr() is the shortest decimal that round-trips: the value the lead typed, 0.7 = 7/10.
        exact = Fraction(repr(self.wrong_fraction))
        return math.floor(exact * self.k + Fraction(1, 2))

    @property
    def per_problem_cap(self) -> int:
        """Most picks one problem can get under the per_problem strategy: ``min(k, M)``."""
        return self.k if self.max_per_problem is None else min(self.k, self.max_per_problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "k": self.k,
            "wrong_fraction": self.wrong_fraction,
            "max_per_problem": self.max_per_problem,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionParams:
        unknown = set(data) - {"strategy", "k", "wrong_fraction", "max_per_problem"}
        if unknown:
            raise ValueError(f"unknown selection parameters: {sorted(unknown)}")
        missing = {"strategy", "k", "wrong_fraction"} - set(data)
        if missing:
            raise ValueError(f"missing selection parameters: {sorted(missing)}")
        return cls(
            strategy=data["strategy"],
            k=data["k"],
            wrong_fraction=data["wrong_fraction"],
            max_per_problem=data.get("max_per_problem"),
        )
