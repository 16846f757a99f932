"""The active-learning loop simulated over data with known step truth (`run`), its sources
(ProcessBench, a teacher PRM, `synthetic` word problems), pretrained starting weights
(`bases`) and PRM800K's data-efficiency ratio with a bootstrap interval (`efficiency`)."""

from selector.simulation.efficiency import bootstrap_ratio, fit_log_curve, fitted_ratio
from selector.simulation.run import (
    DEFAULT_MODEL,
    METRICS,
    STRATEGIES,
    TEACHER_THRESHOLD,
    SimConfig,
    SimItem,
    SimRow,
    choose,
    describe,
    efficiency_ratio,
    fitted_ratios,
    labels_to_reach,
    load_processbench,
    load_teacher_items,
    mean_curves,
    ratios,
    run_simulation,
    split_items,
    teacher_record,
    train_teacher,
    write_outputs,
)
from selector.simulation.synthetic import synthetic_items

__all__ = [
    "DEFAULT_MODEL",
    "METRICS",
    "STRATEGIES",
    "TEACHER_THRESHOLD",
    "SimConfig",
    "SimItem",
    "SimRow",
    "bootstrap_ratio",
    "choose",
    "describe",
    "efficiency_ratio",
    "fit_log_curve",
    "fitted_ratio",
    "fitted_ratios",
    "labels_to_reach",
    "load_processbench",
    "load_teacher_items",
    "mean_curves",
    "ratios",
    "run_simulation",
    "split_items",
    "synthetic_items",
    "teacher_record",
    "train_teacher",
    "write_outputs",
]
