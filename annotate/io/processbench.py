"""ProcessBench: export a campaign's resolved labels, read a ProcessBench file to evaluate on.

A record is `{"id", "problem", "steps", "label", "final_answer_correct"}`: `label` is the index
of the earliest wrong step, −1 when there is none (the only place that −1 means "none").

Export: one record per sample whose resolved regular labels (`annotate.review.resolved`)
agree on a first error; samples with no such label (abandoned tasks), or whose labels still
disagree, are left out. `id` is the sample's external id, `steps` its steps and
`final_answer_correct` its grade.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from annotate.agreement import by_sample, label_views
from annotate.io.base import ImportFailed, check_type, iter_json_lines, require
from annotate.models import Campaign, Label, Sample
from annotate.quality import ABANDONED
from annotate.review import resolved
from selector.evaluation import FirstErrorSample, processbench_label
from selector.ratings import first_error


def iter_processbench_records(
    campaign: Campaign, *, consensus: set[int] | None = None, chunk_size: int = 2000
) -> Iterator[dict[str, Any]]:
    """ProcessBench records of the campaign's labeled samples, by sample id (`consensus`:
    only these samples)."""
    labels = resolved(
        Label.objects.for_campaign(campaign).regular().finished(), include_unresolved=False
    ).exclude(finish_reason__in=ABANDONED)
    if consensus is not None:
        labels = labels.filter(sample_id__in=consensus)
    sample_ids = sorted(set(labels.values_list("sample_id", flat=True)))
    for start in range(0, len(sample_ids), chunk_size):
        chunk = sample_ids[start : start + chunk_size]
        groups = by_sample(label_views(labels.filter(sample_id__in=chunk)))
        samples = Sample.objects.filter(pk__in=chunk).values_list(
            "pk", "external_id", "problem__problem", "steps", "is_correct"
        )
        for pk, external_id, problem, steps, is_correct in samples.order_by("pk"):
            errors = {first_error(view.ratings) for view in groups.get(pk, [])}
            if len(errors) != 1:
                continue
            yield {
                "id": external_id,
                "problem": problem,
                "steps": list(steps or []),
                "label": processbench_label(errors.pop()),
                "final_answer_correct": is_correct,
            }


def export_processbench(out: IO[str], campaign: Campaign, **options: Any) -> int:
    """Write ProcessBench JSONL to `out`; returns the number of records."""
    count = 0
    for record in iter_processbench_records(campaign, **options):
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def read_processbench(stream: IO[str]) -> list[FirstErrorSample]:
    """A ProcessBench file's solutions with their expert first error (−1: none), validated
    (ImportFailed with the line number)."""
    samples = []
    for line, obj, _ in iter_json_lines(stream):
        problem = require(obj, "problem", "str", line)
        steps = require(obj, "steps", "str_list", line)
        label = require(obj, "label", "int", line)
        if not steps:
            raise ImportFailed(line, 'field "steps" is empty')
        if not -1 <= label < len(steps):
            raise ImportFailed(line, f'field "label" must be -1 or a step index, not {label}')
        if "final_answer_correct" in obj and obj["final_answer_correct"] is not None:
            check_type(obj["final_answer_correct"], "bool", line, "final_answer_correct")
        samples.append(FirstErrorSample(problem, steps, label))
    return samples
