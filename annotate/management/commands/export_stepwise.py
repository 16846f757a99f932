import json
import sys
import time

from annotate.io.stepwise import NEUTRAL, iter_stepwise_records
from annotate.management._io import get_campaign, open_output
from annotate.management.command import StepwiseCommand


class Command(StepwiseCommand):
    help = "Export labels in TRL's stepwise-supervision format: prompt, completions, labels."
    runtime = (
        "A default run streams the whole campaign like export_prm800k: seconds for thousands of"
        " labels (not benchmarked on its own)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("--generation", type=int, default=None, help="only this generation")
        parser.add_argument("-o", "--output", default=None, help="output file (default stdout)")
        parser.add_argument(
            "--neutral",
            choices=NEUTRAL,
            default=None,
            help="label of a neutral step: positive (True, Qwen's PRM800K conversion) or "
            "negative (False, TRL's PRM800K script); default the campaign's setting",
        )
        parser.add_argument(
            "--exclude-unresolved",
            action="store_true",
            help="leave out samples whose overlapping labels disagree and no review settled",
        )
        parser.add_argument(
            "--consensus-only",
            action="store_true",
            help="only samples whose label sources agree on the first error",
        )

    def handle(self, *args, **opts):
        campaign = get_campaign(opts["campaign"])
        to_stdout = opts["output"] in (None, "-")
        start = time.perf_counter()
        count = 0
        with open_output(opts["output"], self.stdout._out) as out:
            for record in iter_stepwise_records(
                campaign,
                generation=opts["generation"],
                neutral=opts["neutral"],
                include_unresolved=not opts["exclude_unresolved"],
                consensus_only=opts["consensus_only"],
            ):
                out.write(json.dumps(record, ensure_ascii=False))
                out.write("\n")
                count += 1
        seconds = time.perf_counter() - start
        message = f"Exported {count} stepwise records in {seconds:.2f} s."
        (sys.stderr if to_stdout else self.stdout).write(message + "\n")
