"""The demo campaign behind `make demo`, built from the real data in `data/`.

- campaign `demo`: 100 MATH problems × 8 real model solutions (data/math_cot_samples.jsonl),
  graded at import; a bootstrap PRM is built from their text, scores the pool, and generation 0
  is selected with its scores, so the labeling queue has work;
- gold QC items: ProcessBench solutions (data/processbench_math.jsonl) to MATH500 problems,
  their expert first-error labels as gold ratings (test split: never selected); half of them
  have an error, half are correct throughout (label −1);
- campaign `prm800k`: the 12 real PRM800K records (data/prm800k_examples.jsonl), to browse
  and to export again;
- accounts: lead / stepwise-lead (staff) and labeler / stepwise-labeler.
Running it again changes nothing that exists.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.generations import open_generation, pool_samples
from annotate.io import import_prm800k, import_problems, import_samples
from annotate.management.command import StepwiseCommand
from annotate.models import Campaign, GoldStandard, Problem, Sample
from workers import pipeline

DATA = Path(settings.BASE_DIR) / "data"
USERS = {"lead": ("stepwise-lead", True), "labeler": ("stepwise-labeler", False)}
GUIDELINES = (
    "Rate each step in order. +1: correct and helpful. 0: neutral: not wrong, but not progress "
    "(e.g. a restatement). −1: wrong, or an unreasonable step. Stop at the first −1. "
    "Use the flag for a step you are unsure about; give up if the solution is unreadable."
)
QC_ITEMS = 20


def balanced_gold(items: list[dict], math500: dict[str, dict], n: int) -> list[dict]:
    """The first n/2 ProcessBench items with an error and n/2 without one (label −1), among
    MATH500 problems, interleaved: a gold set that is all errors teaches "gold has an error"."""
    usable = [item for item in items if item["problem"].strip() in math500]
    wrong = [item for item in usable if item["label"] >= 0][: n - n // 2]
    right = [item for item in usable if item["label"] < 0][: n // 2]
    mixed = [item for pair in zip(wrong, right, strict=False) for item in pair]
    return mixed + wrong[len(right) :] + right[len(wrong) :]


class Command(StepwiseCommand):
    help = "Build the demo campaigns and accounts from data/ (idempotent)."
    runtime = (
        "The first run takes a few minutes on CPU (the bootstrap PRM scores the pool); later "
        "runs a few seconds."
    )

    def handle(self, *args, **options) -> None:
        users = self._users()
        demo = self._demo_campaign()
        demo.labelers.add(users["labeler"])
        self._prm800k_campaign()
        self.stdout.write(
            f"Demo ready: campaign {demo.slug} with {demo.samples.count()} samples, "
            f"{demo.generations.count()} generation(s), "
            f"{GoldStandard.objects.filter(sample__campaign=demo).count()} gold QC items."
        )

    def _users(self) -> dict:
        User = get_user_model()
        users = {}
        for name, (password, lead) in USERS.items():
            user, created = User.objects.get_or_create(
                username=name, defaults={"is_staff": lead, "is_superuser": lead}
            )
            if created:
                user.set_password(password)
                user.save()
            users[name] = user
        return users

    def _demo_campaign(self) -> Campaign:
        campaign, created = Campaign.objects.get_or_create(
            slug="demo",
            defaults={
                "name": "MATH demo",
                "guidelines": GUIDELINES,
                "samples_per_problem": 8,
                "k": 2,
                "wrong_fraction": 0.8,
                "qc_rate": 0.1,
                # The control arm, so the dashboard compares active with uniform from day one.
                "uniform_fraction": 0.1,
            },
        )
        if created or not campaign.problems.exists():
            with transaction.atomic():
                self._import_math_cot(campaign)
                self._import_gold(campaign)
        if not campaign.generations.exists():
            self.stdout.write("Building a bootstrap PRM and scoring the pool (a minute on CPU)…")
            checkpoint = pipeline.ensure_active_checkpoint(campaign)
            ids = list(pool_samples(campaign, unscored_by=checkpoint).values_list("pk", flat=True))
            pipeline.score_samples(campaign, checkpoint, ids)
            open_generation(campaign, scores=checkpoint.pk)
        return campaign

    def _import_math_cot(self, campaign: Campaign) -> None:
        records = [json.loads(line) for line in (DATA / "math_cot_samples.jsonl").open()]
        problems = [
            json.dumps(
                {
                    "unique_id": f"math_cot/{r['idx']}",
                    "problem": r["problem"],
                    "ground_truth_answer": r["ground_truth_answer"],
                    "ground_truth_solution": r["ground_truth_solution"],
                    "level": r["level"],
                }
            )
            for r in records
        ]
        samples = [
            json.dumps(
                {
                    "id": f"math_cot/{r['idx']}/{j}",
                    "unique_id": f"math_cot/{r['idx']}",
                    "response": s["response"],
                    "generator": "math_cot",
                }
            )
            for r in records
            for j, s in enumerate(r["samples"])
        ]
        import_problems(problems, campaign)
        import_samples(samples, campaign)

    def _import_gold(self, campaign: Campaign) -> None:
        """ProcessBench solutions with expert first-error labels become gold QC items."""
        math500 = {}
        for line in (DATA / "math500.jsonl").open():
            record = json.loads(line)
            math500[record["problem"].strip()] = record
        problems, samples, gold, seen = [], [], {}, set()
        items = [json.loads(line) for line in (DATA / "processbench_math.jsonl").open()]
        for item in balanced_gold(items, math500, QC_ITEMS):
            source = math500[item["problem"].strip()]
            if source["unique_id"] not in seen:
                seen.add(source["unique_id"])
                problems.append(json.dumps({**source, "split": "test"}))
            samples.append(
                json.dumps(
                    {
                        "id": f"processbench/{item['id']}",
                        "unique_id": source["unique_id"],
                        "steps": item["steps"],
                        "generator": item["generator"],
                    }
                )
            )
            gold[f"processbench/{item['id']}"] = item["label"]
        import_problems(problems, campaign, split=Problem.Split.TEST)
        import_samples(samples, campaign)
        for sample in Sample.objects.filter(campaign=campaign, external_id__in=gold):
            first_error = gold[sample.external_id]
            n = len(sample.steps) if first_error < 0 else first_error + 1
            ratings = [1] * n
            if first_error >= 0:
                ratings[first_error] = -1
            GoldStandard.objects.create(
                sample=sample,
                purpose=GoldStandard.Purpose.QUALITY_CONTROL,
                ratings=ratings,
                finish_reason="found_error" if first_error >= 0 else "solution",
            )

    def _prm800k_campaign(self) -> None:
        campaign, created = Campaign.objects.get_or_create(
            slug="prm800k", defaults={"name": "PRM800K examples (real records)"}
        )
        if created or not campaign.samples.exists():
            with (DATA / "prm800k_examples.jsonl").open() as stream:
                import_prm800k(stream, campaign)
