"""Step labels from an automatic source, from JSONL: one sample per line.

    {"sample": "<external id>", "ratings": [1, 1, -1]}                 hard (−1/0/+1)
    {"sample": "<external id>", "scores": [0.93, 0.71, 0.12],          soft, P(step correct)
     "provenance": {"rollouts": 8, "completer": "Qwen2.5-Math-7B"}}

Exactly one of `ratings` and `scores`, at most one per sample step; one source is hard or soft
throughout. Provenance is an object; the known sources require theirs: `mc` the rollouts per
step (a positive integer) and the completer model, `judge` the judge model and its critique.
A sample's earlier label from the same source is replaced. The import is atomic: the first
bad line fails it all with its line number.
"""

from __future__ import annotations

import re
from typing import IO, Any

from django.db import transaction

from annotate.consensus import HUMAN
from annotate.io.base import (
    DEFAULT_BATCH_SIZE,
    ImportFailed,
    ImportSummary,
    ProgressCallback,
    Timer,
    batched,
    check_type,
    iter_json_lines,
    optional,
    require,
)
from annotate.models import Campaign, LabelSource, Sample, SourceLabel

#: What the known sources must say about where their labels come from: field → type.
PROVENANCE: dict[str, dict[str, str]] = {
    "mc": {"rollouts": "int", "completer": "str"},
    "judge": {"judge": "str", "critique": "str"},
}
_FIELDS = {"sample", "ratings", "scores", "provenance"}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")


def parse_source_label(obj: dict, line: int, source: str) -> dict[str, Any]:
    """A validated line: its sample's external id, ratings or scores, and provenance."""
    extra = sorted(set(obj) - _FIELDS)
    if extra:
        raise ImportFailed(line, f'unexpected field "{extra[0]}"')
    sample = require(obj, "sample", "str_or_int", line)
    ratings = optional(obj, "ratings", "list", line)
    scores = optional(obj, "scores", "list", line)
    if (ratings is None) == (scores is None):
        raise ImportFailed(line, 'give exactly one of "ratings" (hard) and "scores" (soft)')
    if ratings is not None:
        for i, rating in enumerate(ratings):
            if rating not in (-1, 0, 1) or isinstance(rating, bool | float):
                raise ImportFailed(line, f'field "ratings[{i}]" must be -1, 0 or 1')
    else:
        for i, score in enumerate(scores):
            check_type(score, "number", line, f"scores[{i}]")
            if not 0 <= score <= 1:
                raise ImportFailed(line, f'field "scores[{i}]" must lie in [0, 1]')
        scores = [float(score) for score in scores]
    values = ratings if ratings is not None else scores
    if not values:
        raise ImportFailed(line, "no step labels")
    provenance = optional(obj, "provenance", "dict", line) or {}
    for name, kind in PROVENANCE.get(source, {}).items():
        value = require(provenance, name, kind, line, "provenance.")
        if kind == "int" and value < 1:
            raise ImportFailed(line, f'field "provenance.{name}" must be positive')
    return {
        "line": line,
        "sample": str(sample),
        "ratings": ratings,
        "scores": scores,
        "provenance": provenance,
    }


def import_label_source(
    stream: IO[str],
    campaign: Campaign,
    source: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import `source`'s step labels for the campaign's samples (see the module docstring).

    Raises ValueError for a source name that is not a lowercase slug, or is `human`."""
    if not _NAME.fullmatch(source) or source == HUMAN:
        raise ValueError(f"a source name is a lowercase slug other than {HUMAN!r}: {source!r}")
    timer = Timer()
    summary = ImportSummary(kind="label source")
    made = {"labels": 0}
    replaced = 0
    with transaction.atomic():
        found = LabelSource.objects.filter(campaign=campaign, name=source).first()
        kind = found.kind if found is not None else None
        seen: dict[str, int] = {}
        for batch in batched(iter_json_lines(stream), batch_size):
            records = [parse_source_label(obj, line, source) for line, obj, _ in batch]
            for record in records:
                line = record["line"]
                hard = record["ratings"] is not None
                this = LabelSource.Kind.HARD if hard else LabelSource.Kind.SOFT
                if kind is None:
                    kind = this
                elif this != kind:
                    raise ImportFailed(line, f'source "{source}" has {kind} labels, not {this}')
                sample = record["sample"]
                if sample in seen:
                    raise ImportFailed(line, f'sample "{sample}" is also on line {seen[sample]}')
                seen[sample] = line
            samples = {
                external_id: (pk, steps)
                for external_id, pk, steps in Sample.objects.for_campaign(campaign)
                .filter(external_id__in=[r["sample"] for r in records])
                .values_list("external_id", "pk", "steps")
            }
            for record in records:
                _, steps = samples.get(record["sample"], (None, None))
                if steps is None:
                    raise ImportFailed(record["line"], f'unknown sample "{record["sample"]}"')
                values = record["ratings"] or record["scores"]
                if len(values) > len(steps):
                    raise ImportFailed(
                        record["line"],
                        f"{len(values)} step labels but the sample has {len(steps)} steps",
                    )
            if found is None:
                found = LabelSource.objects.create(campaign=campaign, name=source, kind=kind)
            stale = SourceLabel.objects.filter(
                source=found, sample_id__in=[samples[r["sample"]][0] for r in records]
            )
            replaced += stale.delete()[0]
            SourceLabel.objects.bulk_create(
                SourceLabel(
                    source=found,
                    sample_id=samples[r["sample"]][0],
                    ratings=r["ratings"],
                    scores=r["scores"],
                    provenance=r["provenance"],
                )
                for r in records
            )
            made["labels"] += len(records)
            summary.lines = batch[-1][0]
            if progress is not None:
                progress(len(batch))
    summary.created = made
    if replaced:
        summary.details["replaced"] = replaced
    summary.seconds = timer.elapsed
    return summary
