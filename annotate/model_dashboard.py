"""Model quality for the lead dashboard: checkpoints' stored metrics (written by
`workers.loop` and the `evaluate` command) and the geometry of small inline SVG charts.

No torch and no model here: everything comes from a Checkpoint's metrics, training record and
retraining fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q

from annotate.models import Campaign, Checkpoint, Generation
from selector.promotion import METRICS

SERIES_CLASSES = ("s0", "s1", "s2", "s3")
METRIC_LABELS = {name: metric.short for name, metric in METRICS.items()}


@dataclass
class Series:
    name: str
    css: str
    points: str  # SVG polyline "x,y x,y"
    dots: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Chart:
    """A line chart laid out in a fixed viewBox; the template draws it as inline SVG."""

    width: int
    height: int
    series: list[Series]
    x_ticks: list[dict[str, Any]]
    y_ticks: list[dict[str, Any]]
    x_label: str
    y_label: str
    left: int
    bottom: int
    right: int
    top: int

    @property
    def empty(self) -> bool:
        return not any(s.dots for s in self.series)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float | None]]]],
    *,
    x_label: str,
    y_label: str,
    log2_x: bool = False,
    y_range: tuple[float, float] | None = None,
    x_ticks: Sequence[float] | None = None,
    width: int = 560,
    height: int = 260,
) -> Chart:
    """Lay out `series` [(name, [(x, y)])] in data space → SVG coordinates (None y skipped)."""
    left, right, top, bottom = 48, 12, 22, 36
    pts = [(x, y) for _, data in series for x, y in data if y is not None]
    tx = (lambda v: math.log2(v)) if log2_x else (lambda v: float(v))
    if pts:
        xs = [tx(x) for x, _ in pts]
        ys = [y for _, y in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = y_range if y_range else (min(ys), max(ys))
    else:
        x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
    if y_range is None:
        pad = (y1 - y0) * 0.1 or 0.05
        y0, y1 = y0 - pad, y1 + pad
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    yt = _nice_ticks(y0, y1)
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return round(left + (tx(x) - x0) / (x1 - x0) * plot_w, 2)

    def sy(y: float) -> float:
        return round(top + (1 - (y - y0) / (y1 - y0)) * plot_h, 2)

    out = []
    for i, (name, data) in enumerate(series):
        kept = [(x, y) for x, y in data if y is not None]
        out.append(
            Series(
                name=name,
                css=SERIES_CLASSES[i % len(SERIES_CLASSES)],
                points=" ".join(f"{sx(x)},{sy(y)}" for x, y in kept),
                dots=[
                    {"x": sx(x), "y": sy(y), "label": f"{name}: {y:.3f} at {x:g}"} for x, y in kept
                ],
            )
        )
    xt_values = x_ticks if x_ticks is not None else sorted({x for x, _ in pts})
    return Chart(
        width=width,
        height=height,
        series=out,
        x_ticks=[{"x": sx(v), "label": f"{v:g}"} for v in xt_values],
        y_ticks=[{"y": sy(v), "label": f"{v:g}"} for v in yt if y0 <= v <= y1],
        x_label=x_label,
        y_label=y_label,
        left=left,
        bottom=height - bottom,
        right=width - right,
        top=top,
    )


# --- per checkpoint --------------------------------------------------------------------------


def best_of_n_chart(metrics: dict[str, Any]) -> Chart | None:
    curves = (metrics or {}).get("best_of_n") or {}
    names = {"prm": "PRM", "orm": "last step (ORM-style)", "majority": "majority vote"}
    series = [(names[m], [tuple(p) for p in curves[m]]) for m in names if curves.get(m)]
    if not series:
        return None
    ns = [n for n, _ in curves.get("prm") or series[0][1]]
    return line_chart(
        series, x_label="N (samples per problem)", y_label="accuracy", log2_x=True, x_ticks=ns
    )


def training_chart(record: dict[str, Any]) -> Chart | None:
    history = (record or {}).get("history") or []
    if not history:
        return None
    series = [
        ("train loss", [(h["epoch"], h.get("train_loss")) for h in history]),
        ("validation loss", [(h["epoch"], h.get("val_loss")) for h in history]),
    ]
    return line_chart(series, x_label="epoch", y_label="cross-entropy")


def checkpoint_context(checkpoint: Checkpoint) -> dict[str, Any]:
    metrics = checkpoint.metrics or {}
    labeled = metrics.get("labeled") or {}
    record = checkpoint.training_record or {}
    gate = metrics.get("gate")
    curves = metrics.get("best_of_n") or {}
    bon_rows = []
    if curves.get("prm"):
        for i, (n, prm) in enumerate(curves["prm"]):
            bon_rows.append(
                {
                    "n": n,
                    "prm": prm,
                    "orm": curves["orm"][i][1] if curves.get("orm") else None,
                    "majority": curves["majority"][i][1] if curves.get("majority") else None,
                }
            )
    return {
        "checkpoint": checkpoint,
        "summary": metrics.get("summary") or {},
        "data": metrics.get("data") or {},
        "first_error_val": labeled.get("first_error") or {},
        "first_error_gold": metrics.get("first_error") or {},
        "threshold": metrics.get("threshold"),
        "evaluated_at": metrics.get("evaluated_at"),
        "best_of_n": curves,
        "bon_rows": bon_rows,
        "bon_chart": best_of_n_chart(metrics),
        "training_chart": training_chart(record),
        "record": record,
        "loop": {
            "reason": checkpoint.retrain_trigger,
            "stage": checkpoint.retrain_stage,
            "error": checkpoint.error,
        },
        "gate": gate,
        "gate_rows": _gate_rows(gate),
        # The same metrics on the uniform control arm's held-out labels: no strategy chose them.
        "uniform_arm": (gate or {}).get("uniform_arm"),
        "uniform_rows": _gate_rows((gate or {}).get("uniform_arm")),
    }


def _gate_rows(gate: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not gate:
        return []
    candidate, active = gate.get("candidate") or {}, gate.get("active") or {}
    return [
        {
            "metric": name,
            "label": label,
            "candidate": candidate.get(name),
            "active": active.get(name),
            "decisive": name == gate.get("metric"),
        }
        for name, label in METRIC_LABELS.items()
    ]


# --- per campaign ----------------------------------------------------------------------------


def campaign_context(campaign: Campaign) -> dict[str, Any]:
    """Generations with the checkpoint each used, the loop's gate results, and a chart of
    model quality across generations on the campaign's promotion metric."""
    metric = campaign.promotion_metric
    generations = list(
        Generation.objects.filter(campaign=campaign)
        .numbered()
        .select_related("checkpoint")
        .annotate(
            finished=Count(
                "assignments__label",
                filter=Q(assignments__label__finish_reason__isnull=False),
            )
        )
        .order_by("number")
    )
    rows = []
    for g in generations:
        summary = ((g.checkpoint.metrics or {}).get("summary") or {}) if g.checkpoint else {}
        rows.append({"generation": g, "checkpoint": g.checkpoint, "summary": summary})
    checkpoints = list(Checkpoint.objects.filter(campaign=campaign).order_by("created_at", "pk"))
    retrainings = []
    for c in checkpoints:
        gate = (c.metrics or {}).get("gate")
        if not gate:
            continue
        retrainings.append(
            {
                "checkpoint": c,
                "generation": c.trained_on_generation,
                "gate": gate,
                "candidate": (gate.get("candidate") or {}).get(gate.get("metric")),
                "active": (gate.get("active") or {}).get(gate.get("metric")),
            }
        )
    # Quality across generations: the metric of the checkpoint each generation was selected
    # with (its own first evaluation), and each retraining's candidate on the same data as
    # the then-active checkpoint.
    used = [(r["generation"].number, r["summary"].get(metric)) for r in rows]
    after = [(r["generation"], r["candidate"]) for r in retrainings if r["generation"] is not None]
    before = [(r["generation"], r["active"]) for r in retrainings if r["generation"] is not None]
    chart = line_chart(
        [
            ("checkpoint used by the generation", used),
            ("retrained candidate (gate)", after),
            ("active at the gate (same data)", before),
        ],
        x_label="generation",
        y_label=METRIC_LABELS.get(metric, metric),
        x_ticks=sorted({x for x, _ in used + after}),
    )
    return {
        "campaign": campaign,
        "metric": metric,
        "metric_label": METRIC_LABELS.get(metric, metric),
        "rows": rows,
        "checkpoints": checkpoints,
        "retrainings": retrainings,
        "chart": chart,
    }
