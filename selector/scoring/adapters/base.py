"""The adapter interface every kind of PRM implements, and the registry `load_adapter` reads.

The input formats, the native checkpoint format and the truncation policy are documented in
the package docstring (:mod:`selector.scoring`).
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from selector.scoring.batching import ScoringStats, score_batched
from selector.scoring.checkpoint import CheckpointError, PRMConfig
from selector.scoring.device import resolve_device
from selector.scoring.formulas import Aggregation, SampleScore
from selector.scoring.inputs import EncodedSample, PRMInput, SampleLike, as_input

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

ADAPTERS: dict[str, type[PRMAdapter]] = {}


def register_adapter(cls: type[PRMAdapter]) -> type[PRMAdapter]:
    """Class decorator: make an adapter loadable by its ``name``."""
    ADAPTERS[cls.name] = cls
    return cls


class PRMAdapter(ABC):
    """A loaded PRM: encodes inputs, runs the model, returns step and solution scores."""

    name: ClassVar[str]
    # The transformers Auto class the weights are loaded with.
    auto_class: ClassVar[str]

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: PRMConfig,
        *,
        device: torch.device | str | None = None,
        path: Path | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()  # a no-op when load_adapter already moved it
        self.tokenizer = tokenizer
        self.config = config
        self.path = path
        self.labels: tuple[str, ...] = tuple(config.labels)
        pos_limit = getattr(model.config, "max_position_embeddings", None)
        if pos_limit is not None and "roberta" in str(getattr(model.config, "model_type", "")):
            pos_limit -= 2  # RoBERTa-style position ids start after the padding index
        self.max_length = int(config.max_length)
        if pos_limit is not None and self.max_length > int(pos_limit):
            logger.warning(
                "max_length %d exceeds the model's %d positions; using %d",
                self.max_length,
                pos_limit,
                pos_limit,
            )
            self.max_length = int(pos_limit)
        cap = config.max_problem_tokens
        cap = int(cap) if cap is not None else self.max_length // 2
        self.max_problem_tokens = max(0, min(cap, self.max_length - 1))
        self.pad_token_id = next(
            (t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0
        )
        # Decoder models build a KV cache unless told not to; scoring never needs one.
        params = inspect.signature(model.forward).parameters
        self._forward_kwargs: dict[str, Any] = {"use_cache": False} if "use_cache" in params else {}

    @classmethod
    def model_class(cls, weight_names: Collection[str]) -> Any:
        """What ``from_pretrained`` builds the model with, given the checkpoint's weight names."""
        import transformers

        return getattr(transformers, cls.auto_class)

    # --- encoding -----------------------------------------------------------------------
    @abstractmethod
    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]:
        """Encode many inputs at once (tokenizer batch calls), truncation applied."""

    def encode(self, problem: str, steps: Sequence[str]) -> EncodedSample:
        """Encode one input (see the package docstring for the layout and truncation)."""
        return self.encode_many([as_input((problem, steps))])[0]

    # --- model --------------------------------------------------------------------------
    @abstractmethod
    def forward_probs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
    ) -> torch.Tensor:
        """Class probabilities ``[N, len(labels)]`` (fp32) at token ``(rows[n], cols[n])``."""

    def score(
        self,
        samples: Sequence[SampleLike],
        *,
        aggregation: Aggregation = "product",
        neutral_is_positive: bool = True,
        token_budget: int | None = None,
        max_batch_size: int | None = None,
    ) -> list[SampleScore]:
        """Score solutions; one :class:`SampleScore` per input, in input order."""
        return self.score_with_stats(
            samples,
            aggregation=aggregation,
            neutral_is_positive=neutral_is_positive,
            token_budget=token_budget,
            max_batch_size=max_batch_size,
        )[0]

    def score_with_stats(
        self,
        samples: Sequence[SampleLike],
        *,
        aggregation: Aggregation = "product",
        neutral_is_positive: bool = True,
        token_budget: int | None = None,
        max_batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[SampleScore], ScoringStats]:
        """Like :meth:`score`, also returning throughput and padding statistics."""
        return score_batched(
            self,
            samples,
            aggregation=aggregation,
            neutral_is_positive=neutral_is_positive,
            token_budget=token_budget,
            max_batch_size=max_batch_size,
            progress=progress,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} on {self.device}>"


def check_token_id(tokenizer: PreTrainedTokenizerBase, token: str, what: str) -> int:
    """The id of `token`, refusing a token the tokenizer does not know."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    unk = tokenizer.unk_token_id
    if token_id is None or (unk is not None and token_id == unk and token != tokenizer.unk_token):
        raise CheckpointError(
            f"{what} {token!r} is not a token of this model's tokenizer; the PRM cannot be used "
            "without it"
        )
    return int(token_id)
