"""Registering a PRM directory as a Checkpoint: one validation and one record for every caller.

The ``register_checkpoint`` command, the admin and the API call :func:`register_checkpoint`.
Validation is :func:`selector.scoring.inspection.inspect_checkpoint`, which reads config.json
and the safetensors headers only (no torch), so the web process can run it.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from annotate.models import Campaign, Checkpoint
from selector.scoring.checkpoint import CheckpointError
from selector.scoring.inspection import CheckpointInfo, inspect_checkpoint


def validate_checkpoint_dir(path: str | Path, adapter: str | None = None) -> CheckpointInfo:
    """The checked contents of ``path``, or a ``ValidationError`` saying what is missing."""
    try:
        return inspect_checkpoint(path, adapter)
    except CheckpointError as exc:
        raise ValidationError({"path": [str(exc)]}) from None


@transaction.atomic
def register_checkpoint(
    path: str | Path,
    *,
    campaign: Campaign | None,
    adapter: str | None = None,
    name: str | None = None,
    activate: bool = False,
) -> tuple[Checkpoint, CheckpointInfo]:
    """Validate ``path`` and record it as a ``ready`` Checkpoint (``active`` with ``activate``)."""
    resolved = Path(os.path.abspath(Path(path).expanduser()))
    info = validate_checkpoint_dir(resolved, adapter)
    if activate and campaign is None:
        raise ValidationError({"campaign": ["Activating a checkpoint needs its campaign."]})
    checkpoint = Checkpoint(
        campaign=campaign,
        name=name or resolved.name,
        path=str(resolved),
        adapter=info.adapter,
        base_model=info.architecture,
        status=Checkpoint.Status.READY,
        training_record={
            "registered": {
                "parameters": info.parameters,
                "architecture": info.architecture,
                "model_type": info.model_type,
                "weights_format": info.weights_format,
                "warnings": info.warnings,
            }
        },
    )
    # The adapter was checked against selector's registry, which may list adapters (skywork-prm)
    # that the model field's choices do not yet.
    checkpoint.full_clean(exclude=["adapter"])
    checkpoint.save()
    if activate:
        campaign.activate(checkpoint)
    return checkpoint, info
