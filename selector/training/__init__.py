"""PRM training: examples (and PRM800K's), hold-out splits, bases, `TrainingConfig`, trainer."""

from selector.training.bases import default_base
from selector.training.config import BOOTSTRAP_LR, FINETUNE_LR, LORA_LR, TrainingConfig
from selector.training.examples import RATINGS, TrainingExample, example_from_first_error
from selector.training.prm800k import examples_from_prm800k, is_phase2, load_prm800k_examples
from selector.training.splits import split_by_problem, unit_hash, validation_keys
from selector.training.trainer import TRAINER_STATE, TRAINING_RECORD, TrainingResult, train_prm

__all__ = [
    "BOOTSTRAP_LR",
    "FINETUNE_LR",
    "LORA_LR",
    "RATINGS",
    "TRAINER_STATE",
    "TRAINING_RECORD",
    "TrainingConfig",
    "TrainingExample",
    "TrainingResult",
    "default_base",
    "example_from_first_error",
    "examples_from_prm800k",
    "is_phase2",
    "load_prm800k_examples",
    "split_by_problem",
    "train_prm",
    "unit_hash",
    "validation_keys",
]
