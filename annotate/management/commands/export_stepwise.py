import json
import sys
import time

from annotate.io.stepwise import NEUTRAL, SKIP_REASONS, StepwiseExport
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
        parser.add_argument(
            "--exclude-gold",
            action="store_true",
            help="leave out labels of gold (QC and screening) samples",
        )
        parser.add_argument(
            "--finished-only",
            action="store_true",
            help="only labels that judged the whole solution (found_error or solution), "
            "not give_up or bad_problem",
        )

    def handle(self, *args, **opts):
        campaign = get_campaign(opts["campaign"])
        to_stdout = opts["output"] in (None, "-")
        start = time.perf_counter()
        count = 0
        export = StepwiseExport(
            campaign,
            generation=opts["generation"],
            neutral=opts["neutral"],
            include_unresolved=not opts["exclude_unresolved"],
            consensus_only=opts["consensus_only"],
            exclude_gold=opts["exclude_gold"],
            finished_only=opts["finished_only"],
        )
        with open_output(opts["output"], self.stdout._out) as out:
            for record in export.records():
                out.write(json.dumps(record, ensure_ascii=False))
                out.write("\n")
                count += 1
        seconds = time.perf_counter() - start
        message = f"Exported {count} stepwise records in {seconds:.2f} s."
        (sys.stderr if to_stdout else self.stdout).write(message + "\n")
        # Skips go to stderr even with -o: a pipeline's log shows what the file lacks.
        self.stderr.write(f"Skipped labels: {export.report()}.")
        for reason in SKIP_REASONS:
            if export.skipped[reason]:
                self.stderr.write(f"  {reason}: {SKIP_REASONS[reason]}")
