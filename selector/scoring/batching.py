"""Batched PRM scoring by token budget.

Inputs are tokenized once, sorted by length (longest first, so an out-of-memory shows up on
the first batch) and cut into batches whose padded size ``batch_size × longest_in_batch``
stays within ``token_budget`` (a single input longer than the budget gets a batch of its
own). Batches are right-padded with an attention mask and run under ``torch.inference_mode``
(bf16 weights and autocast on CUDA, fp32 on CPU); results come back in input order. Padding
never changes a score: pad keys are masked, and right padding leaves real tokens' positions
unchanged, so a sample's scores do not depend on what it is batched with (up to float
rounding in the kernels, ~1e-6 in fp32).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch

from selector.scoring.device import autocast
from selector.scoring.formulas import (
    AGGREGATIONS,
    NEUTRAL,
    POSITIVE,
    Aggregation,
    SampleScore,
    aggregate,
)
from selector.scoring.inputs import EncodedSample, PRMInput, SampleLike, as_input

# Max padded tokens per batch, per device type: large enough to fill the device, small enough
# that activations of a 7B model fit on one 80 GB GPU.
DEFAULT_TOKEN_BUDGET = {"cuda": 32768, "cpu": 8192}


@dataclass
class ScoringStats:
    """Throughput and padding of one scoring run."""

    n_samples: int = 0
    n_batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    n_truncated: int = 0
    encode_seconds: float = 0.0
    model_seconds: float = 0.0
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def padding_efficiency(self) -> float:
        """Real tokens / padded tokens (1.0 = no padding)."""
        return self.real_tokens / self.padded_tokens if self.padded_tokens else 1.0

    @property
    def tokens_per_s(self) -> float:
        """Real tokens per second, tokenization included."""
        return self.real_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def samples_per_s(self) -> float:
        return self.n_samples / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            padding_efficiency=self.padding_efficiency,
            tokens_per_s=self.tokens_per_s,
            samples_per_s=self.samples_per_s,
        )
        return out


class BatchScorer(Protocol):
    """What `score_batched` needs of an adapter; every `PRMAdapter` has it."""

    device: torch.device
    labels: tuple[str, ...]
    pad_token_id: int

    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]: ...

    def forward_probs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
    ) -> torch.Tensor: ...


def plan_batches(
    lengths: Sequence[int], token_budget: int, max_batch_size: int | None = None
) -> list[list[int]]:
    """Group indices into batches: longest first, ``len(batch) × max_len ≤ token_budget``."""
    if token_budget < 1:
        raise ValueError("token_budget must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = int(lengths[i])
        width = max(longest, n)
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (full or (len(current) + 1) * width > token_budget):
            batches.append(current)
            current, width = [], n
        current.append(i)
        longest = width
    if current:
        batches.append(current)
    return batches


def _step_score_columns(labels: Sequence[str], neutral_is_positive: bool) -> list[int]:
    cols = [labels.index(POSITIVE)]
    if neutral_is_positive and NEUTRAL in labels:
        cols.append(labels.index(NEUTRAL))
    return cols


def score_batched(
    adapter: BatchScorer,
    samples: Sequence[SampleLike],
    *,
    aggregation: Aggregation = "product",
    neutral_is_positive: bool = True,
    token_budget: int | None = None,
    max_batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[SampleScore], ScoringStats]:
    """Score ``samples`` with ``adapter``; returns scores in input order and statistics."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {AGGREGATIONS}")
    device = adapter.device
    budget = token_budget or DEFAULT_TOKEN_BUDGET.get(device.type, DEFAULT_TOKEN_BUDGET["cpu"])
    stats = ScoringStats(n_samples=len(samples), device=str(device))
    t0 = time.perf_counter()
    encoded = adapter.encode_many([as_input(s) for s in samples])
    t1 = time.perf_counter()
    stats.encode_seconds = t1 - t0
    lengths = [len(e.input_ids) for e in encoded]
    batches = plan_batches(lengths, budget, max_batch_size)
    stats.n_batches = len(batches)
    stats.real_tokens = sum(lengths)
    stats.n_truncated = sum(e.truncated for e in encoded)
    cols_sum = _step_score_columns(adapter.labels, neutral_is_positive)

    step_scores: list[list[float] | None] = [None] * len(encoded)
    done = 0
    with torch.inference_mode(), autocast(device):
        for batch in batches:
            width = max(lengths[i] for i in batch)
            stats.padded_tokens += width * len(batch)
            ids = np.full((len(batch), width), adapter.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            rows: list[int] = []
            cols: list[int] = []
            for r, i in enumerate(batch):
                e = encoded[i]
                ids[r, : lengths[i]] = e.input_ids
                mask[r, : lengths[i]] = 1
                rows.extend([r] * len(e.positions))
                cols.extend(e.positions)
            probs = adapter.forward_probs(
                torch.from_numpy(ids).to(device, non_blocking=True),
                torch.from_numpy(mask).to(device, non_blocking=True),
                torch.tensor(rows, dtype=torch.long, device=device),
                torch.tensor(cols, dtype=torch.long, device=device),
            )
            # float64 before summing so this equals formulas.step_scores_from_probs exactly.
            scores = probs.double()[:, cols_sum].sum(dim=1).cpu().tolist()
            start = 0
            for i in batch:
                n = len(encoded[i].positions)
                step_scores[i] = scores[start : start + n]
                start += n
            done += len(batch)
            if progress is not None:
                progress(done, len(encoded))
    stats.model_seconds = time.perf_counter() - t1
    stats.seconds = time.perf_counter() - t0

    results = []
    for e, s in zip(encoded, step_scores, strict=True):
        assert s is not None
        results.append(
            SampleScore(
                step_scores=s,
                score=aggregate(s, aggregation),
                truncated=e.truncated,
                n_scored_steps=len(s),
            )
        )
    return results, stats
