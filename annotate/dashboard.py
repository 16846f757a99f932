"""What the lead dashboard shows, computed with grouped aggregate queries.

Every function takes a campaign (or a queryset) and returns plain data: the geometry of the
server-rendered SVG bars, and the hourly chart as data for Chart.js (static/js/charts.js).
Aggregates are grouped in the database, so the work does not grow with the number of labelers
or labels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from annotate.agreement import OverlapAgreement, overlap_report
from annotate.models import (
    Assignment,
    Campaign,
    Generation,
    GoldStandard,
    Label,
    ScreeningResult,
)
from annotate.quality import Agreement, agreements_by_labeler, gold_labels

HOURS = 24
STATES = [
    Assignment.State.SUBMITTED,
    Assignment.State.IN_PROGRESS,
    Assignment.State.OPEN,
    Assignment.State.EXPIRED,
]


# --- Chart geometry -----------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One part of a horizontal stacked bar, in percent of the whole width."""

    name: str
    value: int
    x: float
    width: float


def stacked(parts: list[tuple[str, int]]) -> list[Segment]:
    """Segments of a 100-wide bar, one per named part, proportional to their values."""
    total = sum(value for _, value in parts)
    segments, x = [], 0.0
    for name, value in parts:
        width = 100.0 * value / total if total else 0.0
        segments.append(Segment(name, value, round(x, 3), round(width, 3)))
        x += width
    return segments


def hour_chart(hours: list[datetime], counts: list[int]) -> dict:
    """The hourly bars as data for static/js/charts.js: each hour's start as an ISO instant
    (UTC), so the browser labels it in its own time zone."""
    return {
        "type": "hours",
        "hours": [hour.isoformat() for hour in hours],
        "counts": counts,
        "y_label": "labels finished",
    }


def sparkline(values: list[int]) -> str:
    """SVG polyline points for values over a 100 × 20 box (top value at the top)."""
    if not values:
        return ""
    top = max(values) or 1
    step = 100.0 / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.2f},{20 - 18 * v / top:.2f}" for i, v in enumerate(values))


def percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


# --- Composable aggregates ----------------------------------------------------------------


def campaign_labels(campaign: Campaign) -> QuerySet[Label]:
    return Label.objects.for_campaign(campaign)


def campaign_assignments(campaign: Campaign) -> list[QuerySet[Assignment]]:
    """The campaign's assignments in two parts: a generation's, found through the generation
    (a few rows; through the sample the join read 12M rows, 0.5 s at scale), and screening
    ones, which have no generation."""
    return [
        Assignment.objects.filter(generation__campaign=campaign),
        Assignment.objects.filter(generation__isnull=True, sample__campaign=campaign),
    ]


def state_counts(assignments: QuerySet[Assignment]) -> QuerySet:
    """Assignments per (generation, kind, state)."""
    return assignments.values("generation_id", "kind", "state").annotate(n=Count("id"))


def hourly(labels: QuerySet[Label], since: datetime) -> QuerySet:
    """Finished labels per (labeler, hour) since `since`."""
    return (
        labels.filter(finished_at__gte=since)
        .annotate(hour=TruncHour("finished_at"))
        .values("labeler_id", "hour")
        .annotate(n=Count("id"))
        .order_by()
    )


def throughput(labels: QuerySet[Label], since: datetime) -> QuerySet:
    """Per labeler: finished labels, those since `since`, QC and screening ones, mean time."""
    return (
        labels.finished()
        .values("labeler_id")
        .annotate(
            finished=Count("id"),
            recent=Count("id", filter=Q(finished_at__gte=since)),
            qc=Count("id", filter=Q(is_quality_control=True)),
            screening=Count("id", filter=Q(is_initial_screening=True)),
            mean_ms=Avg("total_time_ms"),
        )
        .order_by()
    )


def finish_reasons(labels: QuerySet[Label]) -> QuerySet:
    return labels.finished().values("finish_reason").annotate(n=Count("id")).order_by()


def campaign_people(campaign: Campaign) -> QuerySet:
    """Everyone who labels in the campaign: members, and anyone holding work or a verdict."""
    user_model = get_user_model()
    works = Assignment.objects.filter(labeler=OuterRef("pk"), sample__campaign=campaign)
    judged = ScreeningResult.objects.filter(labeler=OuterRef("pk"), campaign=campaign)
    return (
        user_model.objects.filter(
            Q(labeling_campaigns=campaign) | Q(Exists(works)) | Q(Exists(judged))
        )
        .distinct()
        .order_by("username")
        .values("id", "username", "is_staff")
    )


# --- The page -----------------------------------------------------------------------------


@dataclass
class LabelerRow:
    id: int
    username: str
    finished: int = 0
    recent: int = 0
    qc: int = 0
    screening: int = 0
    mean_seconds: float | None = None
    hourly: list[int] = field(default_factory=lambda: [0] * HOURS)
    agreement: Agreement = field(default_factory=Agreement)
    screening_status: str = "not required"
    screening_agreement: float | None = None
    bar_width: float = 0.0
    spark: str = ""

    @property
    def screening_class(self) -> str:
        return self.screening_status.split()[0]

    @property
    def first_error_pct(self) -> float | None:
        rate = self.agreement.first_error_rate
        return None if rate is None else 100 * rate

    @property
    def step_pct(self) -> float | None:
        rate = self.agreement.step_rate
        return None if rate is None else 100 * rate


@dataclass
class GenerationRow:
    name: str
    status: str
    counts: dict[str, int]
    qc: int
    total: int
    segments: list[Segment]


def _generation_rows(campaign: Campaign) -> list[GenerationRow]:
    generations = list(
        Generation.objects.filter(campaign=campaign)
        .order_by("-number")
        .values("id", "number", "status")
    )
    counts: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    qc: dict[int | None, int] = defaultdict(int)
    for part in campaign_assignments(campaign):
        for row in state_counts(part):
            counts[row["generation_id"]][row["state"]] += row["n"]
            if row["kind"] == Assignment.Kind.QUALITY_CONTROL:
                qc[row["generation_id"]] += row["n"]
    rows = []
    keys = [(g["id"], f"Generation {g['number']}", g["status"]) for g in generations]
    if None in counts:
        keys.append((None, "Screening (−1)", ""))
    for key, name, status in keys:
        by_state = {state: counts[key][state] for state in STATES}
        rows.append(
            GenerationRow(
                name=name,
                status=status,
                counts=by_state,
                qc=qc[key],
                total=sum(by_state.values()),
                segments=stacked([(state, by_state[state]) for state in STATES]),
            )
        )
    return rows


def _screening_status(
    campaign: Campaign, result: dict | None, done: int, set_size: int
) -> tuple[str, float | None]:
    if result is not None:
        status = result["status"] + (" (overridden)" if result["overridden_by_id"] else "")
        return status, result["agreement"]
    if not campaign.screening_required:
        return "not required", None
    if done == 0:
        return "not started", None
    return f"in progress {done}/{set_size}", None


def campaign_dashboard(campaign: Campaign, now: datetime | None = None) -> dict:
    """Everything `/dashboard/<slug>/` shows."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = end - timedelta(hours=HOURS)
    hours = [since + timedelta(hours=i) for i in range(HOURS)]
    labels = campaign_labels(campaign)

    people = {row["id"]: row for row in campaign_people(campaign)}
    rows: dict[int, LabelerRow] = {
        pk: LabelerRow(id=pk, username=row["username"]) for pk, row in people.items()
    }

    def row_for(pk: int | None) -> LabelerRow | None:
        if pk is None:
            return None  # imported labels have no labeler account
        if pk not in rows:
            rows[pk] = LabelerRow(id=pk, username=f"user {pk}")
        return rows[pk]

    per_hour = [0] * HOURS
    for item in hourly(labels, since):
        index = int((item["hour"] - since).total_seconds() // 3600)
        if 0 <= index < HOURS:
            per_hour[index] += item["n"]
            row = row_for(item["labeler_id"])
            if row is not None:
                row.hourly[index] += item["n"]

    for item in throughput(labels, since):
        row = row_for(item["labeler_id"])
        if row is None:
            continue
        row.finished, row.recent = item["finished"], item["recent"]
        row.qc, row.screening = item["qc"], item["screening"]
        row.mean_seconds = item["mean_ms"] / 1000 if item["mean_ms"] is not None else None

    for pk, score in agreements_by_labeler(gold_labels(campaign)).items():
        row = row_for(pk)
        if row is not None:
            row.agreement = score

    gold = dict(
        GoldStandard.objects.filter(sample__campaign=campaign)
        .values("purpose")
        .annotate(n=Count("id"))
        .values_list("purpose", "n")
    )
    set_size = gold.get(GoldStandard.Purpose.SCREENING, 0)
    results = {
        r["labeler_id"]: r
        for r in ScreeningResult.objects.filter(campaign=campaign).values(
            "labeler_id", "status", "agreement", "overridden_by_id"
        )
    }
    for pk in results:
        row_for(pk)
    top = max((row.finished for row in rows.values()), default=0)
    for row in rows.values():
        row.screening_status, row.screening_agreement = _screening_status(
            campaign, results.get(row.id), row.screening, set_size
        )
        row.bar_width = percent(row.finished, top)
        row.spark = sparkline(row.hourly)

    reasons = sorted(
        ((item["finish_reason"], item["n"]) for item in finish_reasons(labels)),
        key=lambda pair: (-pair[1], pair[0]),
    )
    reason_total = sum(n for _, n in reasons)
    warnings = []
    if campaign.screening_required and not set_size:
        warnings.append("Screening is required but the campaign has no screening gold.")
    if campaign.qc_rate > 0 and not gold.get(GoldStandard.Purpose.QUALITY_CONTROL):
        warnings.append("QC rate is above zero but the campaign has no QC gold.")
    failed = [row.username for row in rows.values() if row.screening_status == "failed"]
    if failed:
        warnings.append(f"Failed screening, blocked until overridden: {', '.join(failed)}.")

    return {
        "suspect_problems": campaign.problems.suspect().count(),
        "generations": _generation_rows(campaign),
        "hours": per_hour,
        "hour_chart": hour_chart(hours, per_hour),
        "server_time_zone": timezone.get_current_timezone_name(),
        "labels_24h": sum(per_hour),
        "peak_hour": max(per_hour),
        "since": since,
        "reasons": [
            # The bar is the share of all finished labels, the number printed beside it.
            (reason, n, percent(n, reason_total))
            for reason, n in reasons
        ],
        "reasons_total": reason_total,
        "labelers": sorted(rows.values(), key=lambda row: (-row.finished, row.username)),
        "gold_qc": gold.get(GoldStandard.Purpose.QUALITY_CONTROL, 0),
        "gold_screening": set_size,
        "warnings": warnings,
    }


def campaign_overview() -> QuerySet[Campaign]:
    """Campaigns with their generation count and open work, for the picker."""
    open_work = Assignment.objects.filter(
        generation__campaign=OuterRef("pk"), state__in=Assignment.LIVE_STATES
    )
    return Campaign.objects.annotate(
        generation_count=Count("generations", distinct=True),
        has_open_work=Exists(open_work),
    ).order_by("slug")


@dataclass
class CampaignProgress:
    """One campaign on the lead's home page: its open generations' work by state."""

    campaign: Campaign
    newest: int | None  # the newest generation's number
    counts: dict[str, int]
    segments: list[Segment]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def lead_overview() -> list[CampaignProgress]:
    """Every campaign with the assignments of its open generations per state (one query)."""
    live = Q(generations__status=Generation.Status.OPEN)
    states = STATES[:3]  # submitted, in progress, open: what is done and what is left
    per_state = {
        f"n_{state}": Count(
            "generations__assignments", filter=live & Q(generations__assignments__state=state)
        )
        for state in states
    }
    rows = Campaign.objects.annotate(newest=Max("generations__number"), **per_state)
    progress = []
    for row in rows.order_by("slug"):
        counts = {state: getattr(row, f"n_{state}") for state in states}
        progress.append(CampaignProgress(row, row.newest, counts, stacked(list(counts.items()))))
    return progress


# --- Overlap agreement (label quality) -------------------------------------------------------


@dataclass(frozen=True)
class OverlapRow:
    name: str
    agreement: OverlapAgreement

    @property
    def first_error_pct(self) -> float | None:
        rate = self.agreement.first_error_rate
        return None if rate is None else 100 * rate


@dataclass(frozen=True)
class OverlapPanel:
    """Agreement between overlapping labels: the campaign, per generation, per labeler."""

    overlap: int
    total: OverlapAgreement
    generations: list[OverlapRow]
    labelers: list[OverlapRow]


def overlap_panel(campaign: Campaign) -> OverlapPanel:
    """The campaign page loads this panel on its own (htmx), keeping the page's queries."""
    report = overlap_report(campaign)
    names = dict(
        get_user_model()
        .objects.filter(pk__in=list(report.by_labeler))
        .values_list("pk", "username")
    )
    generations = [
        OverlapRow("—" if number is None else f"Generation {number}", agreement)
        for number, agreement in sorted(
            report.by_generation.items(), key=lambda item: -1 if item[0] is None else item[0]
        )
    ]
    labelers = sorted(
        (OverlapRow(names.get(pk, f"user {pk}"), a) for pk, a in report.by_labeler.items()),
        key=lambda row: row.name,
    )
    return OverlapPanel(
        overlap=campaign.overlap,
        total=report.total,
        generations=generations,
        labelers=labelers,
    )
