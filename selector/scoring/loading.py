"""Loading a PRM checkpoint into its adapter, and the per-process cache that keeps it warm.

``load_adapter(path)`` reads local files only; ``trust_remote_code=False`` always (``auto_map``
entries are ignored with a warning); safetensors weights are preferred over
``pytorch_model.bin``. ``get_adapter`` is ``load_adapter`` through an LRU keyed by path and
mtime, so a worker scoring chunk after chunk loads its checkpoint once.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from selector.scoring.adapters import (
    ADAPTERS,
    PRMAdapter,
    QwenPRMAdapter,
    SkyworkPRMAdapter,
    TagTokenAdapter,
)
from selector.scoring.adapters.skywork_prm import SKYWORK_STEP_TOKEN
from selector.scoring.checkpoint import (
    QWEN_SEPARATOR,
    CheckpointError,
    PRMConfig,
    read_prm_config,
)
from selector.scoring.device import default_dtype, resolve_device
from selector.scoring.formulas import LABELS_2
from selector.scoring.inspection import infer_adapter, read_json, weight_shapes

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def prefers_safetensors(path: Path) -> bool:
    """True for safetensors weights; False (with a warning) when only .bin weights exist."""
    if any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file():
        return True
    if (path / "pytorch_model.bin").is_file() or (path / "pytorch_model.bin.index.json").is_file():
        logger.warning(
            "%s has no safetensors weights; falling back to pytorch_model.bin "
            "(loaded with torch.load(weights_only=True)); convert it to safetensors",
            path,
        )
        return False
    raise CheckpointError(f"{path} has no model weights (model.safetensors or pytorch_model.bin)")


_GENERIC_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")


def load_tokenizer(path: Path, common: dict[str, Any]) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok_config = path / "tokenizer_config.json"
    declared = read_json(tok_config).get("tokenizer_class") if tok_config.is_file() else None
    if declared in _GENERIC_TOKENIZERS and (path / "tokenizer.json").is_file():
        # AutoTokenizer swaps in a model-specific class for some model types (qwen2), which
        # rebuilds the pipeline; a checkpoint that declares the generic class means tokenizer.json.
        return PreTrainedTokenizerFast.from_pretrained(path, **common)
    return AutoTokenizer.from_pretrained(path, **common)


def load_adapter(
    path: str | Path,
    adapter: str | None = None,
    device: torch.device | str | None = None,
    *,
    dtype: torch.dtype | None = None,
    max_length: int | None = None,
) -> PRMAdapter:
    """Load a PRM from a local directory and wrap it in its adapter.

    ``adapter`` defaults to the one named in ``stepwise_prm.json`` (else inferred from
    ``config.json``'s architecture). ``device`` defaults to CUDA when available, else CPU;
    ``dtype`` to bf16 on CUDA and fp32 on CPU. Only local files are read, remote code is never
    run (``trust_remote_code=False``; ``auto_map`` entries are ignored) and safetensors weights
    are preferred over ``pytorch_model.bin``.
    """
    from transformers import AutoConfig

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"PRM checkpoint {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"PRM checkpoint {path} is not a directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} has no config.json; it is not a transformers checkpoint")
    raw_config = read_json(config_file)
    prm_config = read_prm_config(path)

    name = adapter or (prm_config.adapter if prm_config else infer_adapter(raw_config, path))
    if name not in ADAPTERS:
        raise CheckpointError(f"unknown adapter {name!r}; known: {sorted(ADAPTERS)}")
    cls = ADAPTERS[name]
    if prm_config is None or prm_config.adapter != name:
        if prm_config is not None:
            logger.warning(
                "%s names adapter %r; using %r with its defaults", path, prm_config.adapter, name
            )
        prm_config = _default_config(name)
    if max_length is not None:
        prm_config = replace(prm_config, max_length=int(max_length))

    for file in (config_file, path / "tokenizer_config.json"):
        if file.is_file() and "auto_map" in read_json(file):
            logger.warning("ignoring custom code (auto_map) in %s: remote code is never run", file)

    dev = resolve_device(device)
    dt = dtype or default_dtype(dev)
    use_safetensors = prefers_safetensors(path)
    common = {"local_files_only": True, "trust_remote_code": False}
    try:
        hf_config = AutoConfig.from_pretrained(path, **common)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: model_type {raw_config.get('model_type')!r} is not built into transformers "
            f"(Stepwise never runs a checkpoint's own code): {exc}"
        ) from exc

    shapes = weight_shapes(path) if use_safetensors else None
    model_cls = cls.model_class(set(shapes or ()))
    try:
        model, info = model_cls.from_pretrained(
            path,
            config=hf_config,
            use_safetensors=use_safetensors,
            dtype=dt,
            output_loading_info=True,
            **common,
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load {path} as {model_cls.__name__}: {exc}") from exc
    missing = [k for k in info.get("missing_keys", []) if k]
    if missing:
        raise CheckpointError(
            f"{path}: weights missing for {', '.join(sorted(missing)[:8])}: the checkpoint does "
            f"not match {type(model).__name__}; scoring with random weights would be meaningless"
        )
    tokenizer = load_tokenizer(path, common)
    model.to(dev)
    return cls(model, tokenizer, prm_config, device=dev, path=path)


def _default_config(adapter: str) -> PRMConfig:
    """The configuration an adapter assumes when a checkpoint has no stepwise_prm.json."""
    if adapter == QwenPRMAdapter.name:
        return PRMConfig(
            adapter=adapter, labels=list(LABELS_2), separator=QWEN_SEPARATOR, max_length=4096
        )
    if adapter == SkyworkPRMAdapter.name:
        return PRMConfig(
            adapter=adapter, labels=list(LABELS_2), separator=SKYWORK_STEP_TOKEN, max_length=4096
        )
    if adapter == TagTokenAdapter.name:
        return PRMConfig(adapter=adapter, labels=list(LABELS_2), max_length=2048)
    return PRMConfig(adapter=adapter)


# --- per-process cache

_CACHE: OrderedDict[tuple, PRMAdapter] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 2


def _fingerprint(path: Path) -> int:
    """Newest mtime in the checkpoint directory, so an overwritten checkpoint is reloaded."""
    stamps = [path.stat().st_mtime_ns]
    stamps += [f.stat().st_mtime_ns for f in path.iterdir() if f.is_file()]
    return max(stamps)


def get_adapter(
    path: str | Path,
    adapter: str | None = None,
    device: torch.device | str | None = None,
    *,
    dtype: torch.dtype | None = None,
    max_length: int | None = None,
    cache_size: int = CACHE_SIZE,
) -> PRMAdapter:
    """:func:`load_adapter` through a per-process LRU (keyed by path + mtime), kept warm.

    A worker process scoring chunk after chunk with the same checkpoint loads it once; at most
    ``cache_size`` models stay resident.
    """
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_dir():
        raise FileNotFoundError(f"PRM checkpoint {path} does not exist")
    dev = resolve_device(device)
    key = (str(resolved), _fingerprint(resolved), adapter, str(dev), str(dtype), max_length)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        # Drop stale versions of the same path before loading the new one.
        for old in [k for k in _CACHE if k[0] == key[0]]:
            del _CACHE[old]
        loaded = load_adapter(resolved, adapter, dev, dtype=dtype, max_length=max_length)
        _CACHE[key] = loaded
        while len(_CACHE) > max(1, cache_size):
            _CACHE.popitem(last=False)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return loaded


def clear_adapter_cache() -> None:
    """Forget every cached adapter (frees their memory once unreferenced)."""
    with _CACHE_LOCK:
        _CACHE.clear()
