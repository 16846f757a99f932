"""`register_checkpoint`: validates a downloaded PRM directory, records it, can activate it."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.models import Campaign, Checkpoint
from tests.selector.prm.published import qwen_prm_checkpoint, skywork_prm_checkpoint

pytestmark = pytest.mark.django_db


def register(*args: str) -> dict:
    out = io.StringIO()
    call_command("register_checkpoint", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_registers_and_activates_a_published_qwen_prm(tmp_path):
    campaign = Campaign.objects.create(slug="byo")
    path = qwen_prm_checkpoint(tmp_path / "Qwen2.5-Math-PRM-tiny")
    payload = register(str(path), "--campaign", "byo", "--activate")
    checkpoint = Checkpoint.objects.get(pk=payload["checkpoint"])
    assert payload["adapter"] == "qwen-prm" == checkpoint.adapter
    assert payload["parameters"] > 0
    assert checkpoint.training_record["registered"]["parameters"] == payload["parameters"]
    assert (checkpoint.name, checkpoint.path) == ("Qwen2.5-Math-PRM-tiny", str(path))
    assert checkpoint.status == Checkpoint.Status.ACTIVE
    campaign.refresh_from_db()
    assert campaign.active_checkpoint_id == checkpoint.pk


def test_registers_skywork_with_a_name_and_loads_it(tmp_path):
    Campaign.objects.create(slug="byo")
    path = skywork_prm_checkpoint(tmp_path / "sky")
    payload = register(str(path), "--campaign", "byo", "--name", "skywork 1.5B", "--load")
    checkpoint = Checkpoint.objects.get(pk=payload["checkpoint"])
    assert (checkpoint.adapter, checkpoint.name) == ("skywork-prm", "skywork 1.5B")
    assert checkpoint.status == Checkpoint.Status.READY


def test_missing_head_weights_and_remote_code_only_are_refused(tmp_path):
    Campaign.objects.create(slug="byo")
    broken = qwen_prm_checkpoint(tmp_path / "broken", drop=("score.2.bias",))
    with pytest.raises(CommandError, match=r"score\.2\.bias"):
        register(str(broken), "--campaign", "byo")
    remote = skywork_prm_checkpoint(tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text())
    config["model_type"] = "skywork_prm"
    (remote / "config.json").write_text(json.dumps(config))
    with pytest.raises(CommandError, match="remote code"):
        register(str(remote), "--campaign", "byo")
    with pytest.raises(CommandError, match="no campaign"):
        register(str(broken), "--campaign", "nope")
    assert not Checkpoint.objects.exists()
