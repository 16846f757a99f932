"""A campaign's labels as PRM training examples.

Native and imported labels go through one path: their PRM800K export records, which
`selector.training.examples_from_prm800k` turns into examples (supervision up to the first
error; phase-1 alternatives as extra examples).
"""

from __future__ import annotations

from collections.abc import Iterator

from annotate.io.prm800k import iter_prm800k_records
from annotate.models import Campaign


def campaign_training_examples(campaign: Campaign, *, generation: int | None = None) -> Iterator:
    from selector.training import examples_from_prm800k

    for record in iter_prm800k_records(campaign, generation=generation):
        yield from examples_from_prm800k(record)
