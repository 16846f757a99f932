import sys
import time

from annotate.consensus import consensus_samples
from annotate.io.processbench import export_processbench
from annotate.management._io import get_campaign, open_output
from annotate.management.command import StepwiseCommand


class Command(StepwiseCommand):
    help = (
        "Export resolved labels in ProcessBench's format: id, problem, steps, label (first "
        "error, −1 for none), final_answer_correct."
    )
    runtime = (
        "A default run streams the whole campaign like export_prm800k: seconds for thousands of"
        " labels (not benchmarked on its own)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("-o", "--output", default=None, help="output file (default stdout)")
        parser.add_argument(
            "--consensus-only",
            action="store_true",
            help="only samples whose label sources agree on the first error",
        )

    def handle(self, *args, **opts):
        campaign = get_campaign(opts["campaign"])
        to_stdout = opts["output"] in (None, "-")
        consensus = consensus_samples(campaign) if opts["consensus_only"] else None
        start = time.perf_counter()
        with open_output(opts["output"], self.stdout._out) as out:
            count = export_processbench(out, campaign, consensus=consensus)
        seconds = time.perf_counter() - start
        message = f"Exported {count} ProcessBench records in {seconds:.2f} s."
        (sys.stderr if to_stdout else self.stdout).write(message + "\n")
