"""What a checkpoint directory holds, read from its files without loading a model (no torch).

:func:`inspect_checkpoint` is the registration check shared by the ``register_checkpoint``
command, the admin and the API: it decides the adapter, refuses a checkpoint that only its own
(remote) code could build, lists the weights from the safetensors headers (JSON at the start of
each file) and refuses one whose head weights are missing. Reading headers costs milliseconds
even for a 72B model, so the web process can run it; the full load happens on the gpu queue.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selector.scoring.checkpoint import (
    NATIVE_ADAPTER,
    PRM_CONFIG_NAME,
    CheckpointError,
    read_prm_config,
)

logger = logging.getLogger(__name__)

QWEN_PRM = "qwen-prm"
SKYWORK_PRM = "skywork-prm"
TAG_TOKEN = "tag-token"
KNOWN_ADAPTERS = (NATIVE_ADAPTER, QWEN_PRM, SKYWORK_PRM, TAG_TOKEN)

# Published architectures whose classes only exist in the checkpoint's own code: Stepwise
# defines their heads itself (selector.scoring.adapters.heads).
PUBLISHED_ARCHITECTURES = {
    "Qwen2ForProcessRewardModel": QWEN_PRM,  # Qwen2.5-Math-PRM-7B / 72B
    "Qwen2ForPrmModel": SKYWORK_PRM,  # Skywork-o1-Open-PRM-Qwen-2.5-1.5B / 7B
}

# Head weights every adapter needs, by weight-name layout; the base model's are checked by name
# prefix (embeddings, one entry per layer, final norm) below.
HEAD_WEIGHTS = {
    "qwen-prm-published": ("score.0.weight", "score.0.bias", "score.2.weight", "score.2.bias"),
    "qwen-prm-linear": ("score.weight",),
    SKYWORK_PRM: ("v_head.summary.weight", "v_head.summary.bias"),
}


@dataclass
class CheckpointInfo:
    """A checkpoint directory as registration sees it."""

    path: Path
    adapter: str
    architecture: str
    model_type: str
    weights_format: str  # "safetensors" or "bin"
    parameters: int | None  # None when only pytorch_model.bin exists (no header to read)
    weight_names: list[str] = field(default_factory=list, repr=False)
    warnings: list[str] = field(default_factory=list)


def read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object")
    return data


def safetensors_header(file: Path) -> dict[str, Any]:
    """The JSON header of one safetensors file: tensor name → dtype, shape, offsets."""
    try:
        with file.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 100_000_000:
                raise CheckpointError(f"{file}: implausible safetensors header ({size} bytes)")
            header = json.loads(fh.read(size))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from exc
    header.pop("__metadata__", None)
    return header


def weight_shapes(path: Path) -> dict[str, list[int]] | None:
    """Every weight's shape from the safetensors headers; None when there are only .bin files.

    With ``model.safetensors.index.json`` every shard it names must be present.
    """
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index}: no weight_map")
        shards = sorted(set(weight_map.values()))
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise CheckpointError(f"{path}: shards named in the index are missing: {missing}")
        files = [path / s for s in shards]
    else:
        files = sorted(path.glob("*.safetensors"))
    if not files:
        return None
    shapes: dict[str, list[int]] = {}
    for file in files:
        for name, entry in safetensors_header(file).items():
            shapes[name] = list(entry.get("shape", []))
    return shapes


# Model types the adapters are used with, for processes without transformers (the web image).
COMMON_MODEL_TYPES = frozenset(
    [
        "bert",
        "roberta",
        "xlm-roberta",
        "deberta",
        "deberta-v2",
        "distilbert",
        "electra",
        "modernbert",
        "qwen2",
        "qwen3",
        "llama",
        "mistral",
        "gemma",
        "gemma2",
        "phi3",
    ]
)


def builtin_model_types() -> frozenset[str]:
    """The model types transformers builds without remote code (a fixed list without it)."""
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    except ImportError:
        return COMMON_MODEL_TYPES
    return frozenset(CONFIG_MAPPING_NAMES)


def _has_bin(path: Path) -> bool:
    return any((path / f).is_file() for f in ("pytorch_model.bin", "pytorch_model.bin.index.json"))


def infer_adapter(config: dict[str, Any], path: Path) -> str:
    """The adapter a checkpoint without ``stepwise_prm.json`` is for, from its config.json."""
    archs = list(config.get("architectures") or [])
    for arch in archs:
        if arch in PUBLISHED_ARCHITECTURES:
            return PUBLISHED_ARCHITECTURES[arch]
    joined = " ".join(archs)
    if "ForCausalLM" in joined:
        return TAG_TOKEN
    if "ProcessRewardModel" in joined or config.get("num_labels") == 2:
        return QWEN_PRM
    if "ForTokenClassification" in joined:
        return NATIVE_ADAPTER
    raise CheckpointError(
        f"{path} has no {PRM_CONFIG_NAME} and its architecture ({joined or 'unknown'}) does not "
        f"say which adapter to use; name one of {list(KNOWN_ADAPTERS)}"
    )


def _check_builtin(config: dict[str, Any], path: Path) -> None:
    """Refuse a config that only its own Python code (``auto_map``) can build."""
    model_type = config.get("model_type")
    if model_type in builtin_model_types():
        return
    remote = config.get("auto_map") or {}
    where = ", ".join(sorted({str(v).split(".")[0] + ".py" for v in remote.values()})) or "none"
    raise CheckpointError(
        f"{path}: model_type {model_type!r} is not built into transformers; this checkpoint "
        f"needs its own code to load (auto_map → {where}) and Stepwise never runs remote code"
    )


def _missing_base_weights(names: set[str], config: dict[str, Any], prefix: str) -> list[str]:
    """Base-model weights a decoder checkpoint lacks: embeddings, any layer, final norm."""
    wanted = [f"{prefix}embed_tokens.weight", f"{prefix}norm.weight"]
    missing = [w for w in wanted if w not in names]
    for i in range(int(config.get("num_hidden_layers") or 0)):
        if not any(n.startswith(f"{prefix}layers.{i}.") for n in names):
            missing.append(f"{prefix}layers.{i}.*")
    return missing


def head_layout(adapter: str, names: set[str]) -> str:
    """Which head a ``qwen-prm`` checkpoint has (published ``score.0/2`` or one Linear)."""
    if adapter == QWEN_PRM:
        return "qwen-prm-linear" if "score.weight" in names else "qwen-prm-published"
    return adapter


def inspect_checkpoint(path: str | Path, adapter: str | None = None) -> CheckpointInfo:
    """Check that ``path`` is a PRM Stepwise can load, without loading it.

    Raises :class:`CheckpointError` naming what is wrong: no config.json, an unknown adapter,
    a model only remote code can build, shards missing, head weights missing.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} has no config.json; it is not a transformers checkpoint")
    config = read_json(config_file)
    prm_config = read_prm_config(path)
    name = adapter or (prm_config.adapter if prm_config else infer_adapter(config, path))
    if name not in KNOWN_ADAPTERS:
        raise CheckpointError(f"unknown adapter {name!r}; known: {list(KNOWN_ADAPTERS)}")
    _check_builtin(config, path)
    warnings: list[str] = []
    if "auto_map" in config:
        warnings.append("config.json has an auto_map: its remote code is ignored, never run")

    shapes = weight_shapes(path)
    if shapes is None:
        if not _has_bin(path):
            raise CheckpointError(f"{path} has no model weights (model.safetensors)")
        warnings.append("only pytorch_model.bin weights: convert them to safetensors")
        return CheckpointInfo(
            path=path,
            adapter=name,
            architecture=" ".join(config.get("architectures") or []),
            model_type=str(config.get("model_type")),
            weights_format="bin",
            parameters=None,
            warnings=warnings,
        )
    names = set(shapes)
    layout = head_layout(name, names)
    missing = [w for w in HEAD_WEIGHTS.get(layout, ()) if w not in names]
    if name in (QWEN_PRM, SKYWORK_PRM):
        missing += _missing_base_weights(names, config, "model.")
    if name == NATIVE_ADAPTER and not names & {"classifier.weight", "score.weight"}:
        missing.append("classifier.weight (or score.weight)")
    tied = config.get("tie_word_embeddings", True)
    if name == TAG_TOKEN and not tied and "lm_head.weight" not in names:
        missing.append("lm_head.weight")
    if missing:
        raise CheckpointError(
            f"{path}: weights missing for the {name} adapter: {', '.join(missing[:12])}"
            + (f" (and {len(missing) - 12} more)" if len(missing) > 12 else "")
        )
    parameters = 0
    for shape in shapes.values():
        count = 1
        for dim in shape:
            count *= int(dim)
        parameters += count
    return CheckpointInfo(
        path=path,
        adapter=name,
        architecture=" ".join(config.get("architectures") or []),
        model_type=str(config.get("model_type")),
        weights_format="safetensors",
        parameters=parameters,
        weight_names=sorted(names),
        warnings=warnings,
    )
