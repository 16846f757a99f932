import os

from annotate.io import import_samples
from annotate.management._io import run_import
from annotate.management.command import StepwiseCommand


class Command(StepwiseCommand):
    help = "Import model-written samples from JSONL; answers extracted and graded; atomic."
    runtime = (
        "A run imports and grades 2,700–4,400 samples a second on 2 shared cores (README, "
        "Benchmarks): ~30 s per 100,000."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSONL file, or - for standard input")
        parser.add_argument("--campaign", required=True, help="campaign slug (created if new)")
        parser.add_argument(
            "--split-steps",
            default="\n\n",
            help=r'separator splitting "response" into steps (default a blank line, "\n\n"; '
            r"backslash escapes like \n are understood)",
        )
        parser.add_argument("--batch-size", type=int, default=5000, help="lines per batch")
        parser.add_argument(
            "--processes", type=int, default=None, help="grading processes (default: CPUs)"
        )
        parser.add_argument(
            "--no-grade", action="store_true", help="leave is_correct empty (grade later)"
        )

    def handle(self, *args, **opts):
        separator = opts["split_steps"].encode("utf-8").decode("unicode_escape")
        summary, created = run_import(
            import_samples,
            opts["file"],
            opts["campaign"],
            quiet=opts["verbosity"] == 0,
            split_steps=separator,
            batch_size=opts["batch_size"],
            processes=opts["processes"] or os.cpu_count(),
            grade=not opts["no_grade"],
        )
        if created:
            self.stdout.write(f"Created campaign {opts['campaign']}.")
        self.stdout.write(str(summary))
