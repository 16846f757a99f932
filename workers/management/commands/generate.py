"""Generate N solutions per problem for a campaign, in this process, outside the loop.

The campaign's generator settings are the defaults; the options override them for this run.
Samples are keyed (problem, index) with no generation, so running the command again tops each
problem up to N and never duplicates; the loop's own generations (admin "Start next
generation" with N > 0) key theirs by generation as well.
"""

import json
from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from annotate.management.command import StepwiseCommand
from annotate.models import Campaign
from selector.generation import GenerationError, GeneratorConfig
from workers.generation import generate_for_campaign, stored_indices, train_problems

DEFAULTS = GeneratorConfig()


def campaign_default(name: str) -> str:
    return f"default: the campaign's setting ({getattr(DEFAULTS, name)} unless changed)"


def problem_ids(path: str) -> list[str]:
    """Problem unique ids from a file: one a line, or JSONL objects with "unique_id"."""
    if not Path(path).is_file():
        raise CommandError(f"no such file: {path}")
    ids = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                line = json.loads(line)["unique_id"]
            except (ValueError, KeyError, TypeError):
                raise CommandError(f'{path}, line {number}: no "unique_id"') from None
        ids.append(str(line))
    return ids


class Command(StepwiseCommand):
    help = "Generate N solutions per train problem, stored as samples and graded."
    runtime = (
        "A run goes at the generator server's pace: 0.1–0.8 solutions a second against a small "
        "llama.cpp model on 2 cores (README, Benchmarks)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--campaign", required=True, metavar="SLUG", help="Whose problems to generate for."
        )
        parser.add_argument(
            "--n", type=int, required=True, help="Solutions per problem (indices 0..N-1)."
        )
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--server",
            metavar="URL",
            help="An OpenAI-compatible base URL, e.g. http://gpu-host:8000/v1 "
            "(default: the campaign's).",
        )
        where.add_argument(
            "--local",
            metavar="PATH",
            help="A local Hugging Face causal-LM directory (default: the server).",
        )
        parser.add_argument(
            "--model", metavar="NAME", help="The served model's name (default: the campaign's)."
        )
        for flag, kind, metavar, name in [
            ("--temperature", float, "T", "temperature"),
            ("--top-p", float, "P", "top_p"),
            ("--max-tokens", int, "M", "max_tokens"),
            ("--concurrency", int, "C", "concurrency"),
        ]:
            parser.add_argument(flag, type=kind, metavar=metavar, help=campaign_default(name))
        parser.add_argument(
            "--problems",
            metavar="FILE",
            help="Only these problems: unique ids, one a line (or JSONL with unique_id); "
            "default every train problem.",
        )
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args, campaign: str, n: int, **options):
        camp = Campaign.objects.filter(slug=campaign).first()
        if camp is None:
            raise CommandError(f"no campaign {campaign!r}")
        if n < 0:
            raise CommandError("--n must be >= 0")
        changes = {"n": n}
        if options["server"]:
            changes.update(backend="openai", base_url=options["server"])
        if options["local"]:
            changes.update(backend="local", model=options["local"])
        elif options["model"]:
            changes["model"] = options["model"]
        for name in ("temperature", "top_p", "max_tokens", "concurrency"):
            if options[name] is not None:
                changes[name] = options[name]
        try:
            config = camp.generator_config().replace(**changes)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"generator settings: {exc}") from None
        if not config.model:
            raise CommandError("no model: pass --model NAME (with --server) or --local PATH")
        if config.backend == "openai" and not config.base_url:
            raise CommandError("no server: pass --server URL or set the campaign's base URL")
        try:
            ids = problem_ids(options["problems"]) if options["problems"] else None
            problems = train_problems(camp, ids)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        existing = stored_indices(camp, None, problems)
        already = sum(len({i for i in indices if i < n}) for indices in existing.values())
        with tqdm(
            total=n * len(problems),
            initial=already,
            unit=" samples",
            disable=None,
            file=self.stderr,
        ) as bar:
            try:
                summary = generate_for_campaign(camp, config, problems, on_stored=bar.update)
            except GenerationError as exc:
                raise CommandError(
                    f"{exc} (what came back is stored; run again to resume)"
                ) from exc
        if options["json"]:
            self.stdout.write(json.dumps(summary.as_dict()))
        else:
            self.stdout.write(str(summary))
