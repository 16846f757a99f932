import json

from django.core.management.base import CommandError

from annotate.consensus import disagreement_samples, route_disagreements
from annotate.generations import SelectionError, open_generation, preview_selection
from annotate.management._io import get_campaign
from annotate.management.command import StepwiseCommand
from annotate.models import AuditEvent, Problem


class Command(StepwiseCommand):
    help = (
        "Select samples for the campaign's next generation and open it (its selections and "
        "assignment slots); --dry-run only shows what would be selected."
    )
    runtime = (
        "Seconds: on 10⁷ samples in PostgreSQL a dry run took 7.6 s (imported scores) to "
        "8.5 s (a checkpoint's) on two cores, loading the pool 4.4–5.6 s and selecting ~2 s; "
        "opening the generation 13–14 s (README, Benchmarks); scoring by a checkpoint is not "
        "part of it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument(
            "--strategy",
            choices=["per_problem", "global", "disagreement"],
            help="Top-K per problem or across the pool; default: the campaign's. disagreement: "
            "open a slot in the newest open generation for every sample whose label sources "
            "disagree on the first error (annotate.consensus)",
        )
        parser.add_argument("--k", type=int, help="How many to select; default: the campaign's.")
        parser.add_argument(
            "--wrong-fraction",
            type=float,
            help="Share of K from wrong-answer samples; default: the campaign's.",
        )
        parser.add_argument(
            "--max-per-problem", type=int, help="Cap per problem; default: the campaign's."
        )
        parser.add_argument(
            "--scores",
            default="imported",
            help="imported (verifier scores), active (active checkpoint) or a checkpoint id",
        )
        parser.add_argument("--dry-run", action="store_true", help="write nothing")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **opts):
        campaign = get_campaign(opts["campaign"])
        if opts["strategy"] == "disagreement":
            self.stdout.write(self._disagreement(campaign, opts["dry_run"]))
            return
        overrides = {
            "strategy": opts["strategy"],
            "k": opts["k"],
            "wrong_fraction": opts["wrong_fraction"],
            "max_per_problem": opts["max_per_problem"],
        }
        try:
            if opts["dry_run"]:
                preview = preview_selection(campaign, scores=opts["scores"], **overrides)
                generation = None
            else:
                generation, preview = open_generation(campaign, scores=opts["scores"], **overrides)
        except SelectionError as exc:
            raise CommandError(str(exc)) from None
        if generation is not None:
            AuditEvent.record(
                None,
                "command",
                AuditEvent.Action.GENERATION_STARTED,
                f"generation {generation.number}",
                campaign=campaign,
                command="select",
                scores=opts["scores"],
                overrides={key: str(value) for key, value in overrides.items()},
            )
        if opts["json"]:
            data = preview.as_json()
            if generation is not None:
                data["generation"] = generation.number
            self.stdout.write(json.dumps(data))
            return
        wrong = int(preview.wrong.sum())
        what = "Would select" if generation is None else f"Opened generation {generation.number}:"
        self.stdout.write(
            f"{what} {len(preview)} samples ({wrong} wrong, {len(preview) - wrong} filled) "
            f"from a pool of {preview.pool_size}; params {json.dumps(preview.params)}, "
            f"scores {opts['scores']}."
        )
        if generation is not None:
            self.stdout.write(
                f"Created {len(preview) * campaign.overlap} assignment slots "
                f"(overlap {campaign.overlap})."
            )
        suspect = Problem.objects.filter(campaign=campaign).suspect().count()
        if suspect:
            self.stdout.write(
                f"{suspect} problem(s) have a suspect ground truth: their samples did not count "
                "as wrong (admin: Problems, filter by ground truth status)."
            )

    def _disagreement(self, campaign, dry_run: bool) -> str:
        if dry_run:
            return f"Would route {len(disagreement_samples(campaign))} disagreeing samples."
        try:
            routed = route_disagreements(campaign)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return f"Opened {routed} slots for samples whose label sources disagree."
