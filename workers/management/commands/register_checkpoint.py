"""Register a local PRM directory, exactly as downloaded or trained, as a campaign's checkpoint.

    register_checkpoint PATH --campaign SLUG [--adapter NAME] [--name N] [--activate] [--json]
                        [--load]

Checks without loading (annotate.checkpoints): config.json built into transformers (remote code
is never run), safetensors weights (an index's shards all present), every head weight of the
adapter. ``--load`` also loads the model once, as a scoring worker would. ``--json`` prints
``{"checkpoint": ID, "adapter": NAME, "parameters": N}``.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from annotate.checkpoints import register_checkpoint, validate_checkpoint_dir
from annotate.management.command import StepwiseCommand
from annotate.models import AuditEvent, Campaign
from selector.scoring.inspection import KNOWN_ADAPTERS


class Command(StepwiseCommand):
    help = "Validate a PRM directory and register it as a checkpoint of a campaign."
    runtime = (
        "A run takes seconds (headers are read, not weights); --load adds the model's load time."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH", help="The model directory, as downloaded.")
        parser.add_argument(
            "--campaign", required=True, metavar="SLUG", help="Campaign to register it for."
        )
        parser.add_argument("--adapter", choices=KNOWN_ADAPTERS, help="Default: from the files.")
        parser.add_argument("--name", metavar="N", help="Default: the directory's name.")
        parser.add_argument("--activate", action="store_true", help="Score the pool with it.")
        parser.add_argument("--load", action="store_true", help="Also load the weights once.")
        parser.add_argument(
            "--json", action="store_true", help='Print {"checkpoint", "adapter", "parameters"}.'
        )

    def handle(self, *args, **opts):
        campaign = Campaign.objects.filter(slug=opts["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign {opts['campaign']!r}")
        try:
            if opts["load"]:
                from selector.scoring import CheckpointError, load_adapter

                info = validate_checkpoint_dir(opts["path"], opts["adapter"])
                try:
                    load_adapter(info.path, info.adapter, device="cpu")
                except (CheckpointError, OSError) as exc:
                    raise CommandError(f"{opts['path']} does not load: {exc}") from None
            checkpoint, info = register_checkpoint(
                opts["path"],
                campaign=campaign,
                adapter=opts["adapter"],
                name=opts["name"],
                activate=opts["activate"],
            )
        except ValidationError as exc:
            messages = [m for ms in exc.message_dict.values() for m in ms]
            raise CommandError("; ".join(messages)) from None
        if opts["activate"]:
            AuditEvent.record(
                None,
                "command",
                AuditEvent.Action.CHECKPOINT_ACTIVATED,
                f"checkpoint {checkpoint.pk}",
                campaign=campaign,
                command="register_checkpoint",
            )
        if opts["json"]:
            payload = {
                "checkpoint": checkpoint.pk,
                "adapter": info.adapter,
                "parameters": info.parameters,
            }
            self.stdout.write(json.dumps(payload))
            return
        size = "?" if info.parameters is None else f"{info.parameters:,}"
        self.stdout.write(
            f"Registered checkpoint {checkpoint.pk} ({checkpoint.name}): {info.adapter}, "
            f"{size} parameters, {info.weights_format}"
            + (", active" if opts["activate"] else "")
            + "".join(f"\nwarning: {w}" for w in info.warnings)
        )
