from annotate.io import import_prm800k
from annotate.management._io import run_import
from annotate.management.command import StepwiseCommand


class Command(StepwiseCommand):
    help = "Import labeled PRM800K records (phase 1 or 2) from JSONL; all or nothing."
    runtime = "A run takes seconds for thousands of records (not benchmarked on its own)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="PRM800K JSONL file, or - for standard input")
        parser.add_argument("--campaign", required=True, help="campaign slug (created if new)")
        parser.add_argument("--batch-size", type=int, default=1000, help="lines per batch")

    def handle(self, *args, **opts):
        summary, created = run_import(
            import_prm800k,
            opts["file"],
            opts["campaign"],
            quiet=opts["verbosity"] == 0,
            batch_size=opts["batch_size"],
        )
        if created:
            self.stdout.write(f"Created campaign {opts['campaign']}.")
        self.stdout.write(str(summary))
