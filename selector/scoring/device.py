"""Where a model runs and in which precision: CUDA when available, bf16 there, fp32 on CPU."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` as a torch device; None means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_dtype(device: torch.device | str | None) -> torch.dtype:
    """bf16 on CUDA, fp32 elsewhere."""
    return torch.bfloat16 if resolve_device(device).type == "cuda" else torch.float32


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on CPU (fp32 there)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
