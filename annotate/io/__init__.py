"""Import and export: streaming JSONL readers and writers, usable without the command line.

Readers take a text stream and a Campaign and are atomic (`ImportFailed(line, message)`);
writers are generators over a campaign's labels in constant memory.
"""

from annotate.io.base import ImportError_, ImportFailed, ImportSummary
from annotate.io.prm800k import (
    export_prm800k,
    import_prm800k,
    iter_prm800k_lines,
    iter_prm800k_records,
)
from annotate.io.problems import import_problems
from annotate.io.samples import import_samples, sample_copy_payloads, split_response
from annotate.io.stepwise import export_stepwise, iter_stepwise_records

__all__ = [
    "ImportError_",
    "ImportFailed",
    "ImportSummary",
    "export_prm800k",
    "export_stepwise",
    "import_prm800k",
    "import_problems",
    "import_samples",
    "iter_prm800k_lines",
    "iter_prm800k_records",
    "iter_stepwise_records",
    "sample_copy_payloads",
    "split_response",
]
