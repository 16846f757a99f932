"""Promotion: whether a newly trained checkpoint replaces the active one. Pure; no Django.

The metrics (what they are called, which direction is better) are defined here once; the gate,
the campaign's choices, the dashboards and the simulator all read them from `METRICS`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # the campaign's choice label
    short: str  # chart axes and dashboard tables
    higher_is_better: bool


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("val_loss", "Validation loss (lower is better)", "validation loss", False),
        Metric("step_auc", "Step-level AUC", "step AUC", True),
        Metric("first_error_f1", "First-error F1 (ProcessBench)", "first-error F1", True),
        Metric("best_of_n", "Best-of-N accuracy (PRM, largest N)", "best-of-N (PRM)", True),
    )
}


def metric_choices() -> list[tuple[str, str]]:
    """(name, label) pairs for a Django `choices=`."""
    return [(metric.name, metric.label) for metric in METRICS.values()]


def decide(
    metric: str, candidate: float | None, active: float | None, *, min_delta: float = 0.0
) -> tuple[bool, str]:
    """(promote?, why). Strictly better by more than `min_delta`; a tie keeps the active one."""
    higher = METRICS[metric].higher_is_better
    if candidate is None:
        return False, f"the candidate has no {metric} (no evaluation data for it)"
    if active is None:
        return True, f"the active checkpoint has no {metric} on this data"
    better = candidate > active + min_delta if higher else candidate < active - min_delta
    relation = "beats" if better else "does not beat"
    return better, f"{metric} {candidate:.4f} {relation} the active {active:.4f}"
