from django.core.management.base import CommandError

from annotate.io import ImportFailed
from annotate.io.label_sources import import_label_source
from annotate.management._io import count_lines, get_campaign, open_input, progress_bar
from annotate.management.command import StepwiseCommand


class Command(StepwiseCommand):
    help = (
        "Import step labels from an automatic source (hard −1/0/+1 or soft [0, 1] per step, "
        "with provenance) for a campaign's samples; atomic."
    )
    runtime = "A run takes seconds for thousands of lines (not benchmarked on its own)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSONL file, or - for standard input")
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("--source", required=True, help="source name, e.g. mc or judge")
        parser.add_argument("--batch-size", type=int, default=5000, help="lines per batch")

    def handle(self, *args, **opts):
        campaign = get_campaign(opts["campaign"])
        total = count_lines(opts["file"])
        try:
            with (
                open_input(opts["file"]) as stream,
                progress_bar(total, "lines", opts["verbosity"] == 0) as progress,
            ):
                summary = import_label_source(
                    stream,
                    campaign,
                    opts["source"],
                    batch_size=opts["batch_size"],
                    progress=progress,
                )
        except (ImportFailed, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(summary))
