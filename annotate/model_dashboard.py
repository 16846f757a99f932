"""Model quality for the lead dashboard: checkpoints' stored metrics (written by
`workers.loop` and the `evaluate` command) and the line charts as data.

No torch and no model here: everything comes from a Checkpoint's metrics, training record and
retraining fields. Charts are data that Chart.js draws in the browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q

from annotate.models import Campaign, Checkpoint, Generation
from selector.promotion import METRICS

METRIC_LABELS = {name: metric.short for name, metric in METRICS.items()}


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]  # (x, y) in data units, None y left out


@dataclass
class Chart:
    """A line chart as data: static/js/charts.js has Chart.js draw it from `spec`."""

    series: list[Series]
    x_label: str
    y_label: str
    log2_x: bool = False
    x_ticks: list[float] = field(default_factory=list)
    y_range: tuple[float, float] | None = None

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)

    @property
    def spec(self) -> dict[str, Any]:
        """What the template hands to the script through `json_script`."""
        return {
            "type": "line",
            "series": [{"name": s.name, "points": s.points} for s in self.series if s.points],
            "x_label": self.x_label,
            "y_label": self.y_label,
            "log2_x": self.log2_x,
            "x_ticks": self.x_ticks,
            "y_range": self.y_range,
        }


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float | None]]]],
    *,
    x_label: str,
    y_label: str,
    log2_x: bool = False,
    y_range: tuple[float, float] | None = None,
    x_ticks: Sequence[float] | None = None,
) -> Chart:
    """`series` [(name, [(x, y)])] as a chart; points without a y are left out, and the x
    ticks default to every x that has a point."""
    kept = [
        Series(name, [(float(x), float(y)) for x, y in data if y is not None])
        for name, data in series
    ]
    xs = sorted({x for s in kept for x, _ in s.points})
    return Chart(
        series=kept,
        x_label=x_label,
        y_label=y_label,
        log2_x=log2_x,
        x_ticks=[float(x) for x in x_ticks] if x_ticks is not None else xs,
        y_range=y_range,
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
