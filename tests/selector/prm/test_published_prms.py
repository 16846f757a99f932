"""Published PRMs load as downloaded and score as their model cards say (tiny dimensions)."""

from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")

from selector.scoring import CheckpointError, load_adapter  # noqa: E402
from selector.scoring.inspection import inspect_checkpoint  # noqa: E402
from tests.selector.prm.published import (  # noqa: E402
    qwen_prm_checkpoint,
    qwen_prm_reference,
    skywork_prm_checkpoint,
    skywork_prm_reference,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLES = [
    ("What is one plus two?", ["We add one and two.", "The answer is 3."]),
    ("Compute 7 * 6.", ["Seven times six is 42.", "So 2x = 10.", "The answer is \\boxed{42}."]),
    ("Let x = 2 + 3.", ["so x = 5."]),
]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _assert_no_remote_code():
    assert not any("qwen2_rm" in m or m == "modeling_prm" for m in sys.modules)


@pytest.mark.parametrize(
    ("build", "reference", "adapter_name"),
    [
        (qwen_prm_checkpoint, qwen_prm_reference, "qwen-prm"),
        (skywork_prm_checkpoint, skywork_prm_reference, "skywork-prm"),
    ],
)
def test_published_checkpoint_scores_like_its_model_card(tmp_path, build, reference, adapter_name):
    path = build(tmp_path / "prm")
    assert (path / "model.safetensors.index.json").is_file()
    assert not (path / "stepwise_prm.json").exists()  # exactly as downloaded
    adapter = load_adapter(path, device="cpu")
    _assert_no_remote_code()
    assert adapter.name == adapter_name
    scores = adapter.score(SAMPLES, neutral_is_positive=False)
    for (problem, steps), got in zip(SAMPLES, scores, strict=True):
        want = reference(path, adapter.tokenizer, problem, steps)
        assert got.step_scores == pytest.approx(want, abs=2e-5)
        assert got.n_scored_steps == len(steps) and not got.truncated
    # Batched and one-by-one agree (padding never changes a score).
    alone = [adapter.score([s])[0].step_scores for s in SAMPLES]
    for a, b in zip(alone, scores, strict=True):
        assert a == pytest.approx(b.step_scores, abs=1e-5)


def test_registration_check_reads_the_published_layout(tmp_path):
    qwen = inspect_checkpoint(qwen_prm_checkpoint(tmp_path / "qwen"))
    sky = inspect_checkpoint(skywork_prm_checkpoint(tmp_path / "sky"))
    assert (qwen.adapter, sky.adapter) == ("qwen-prm", "skywork-prm")
    assert qwen.parameters == sum(p.numel() for p in load_adapter(qwen.path).model.parameters())
    assert any("auto_map" in w for w in qwen.warnings)
    _assert_no_remote_code()


@pytest.mark.parametrize(
    ("build", "dropped"),
    [
        (qwen_prm_checkpoint, ("score.2.weight", "score.0.bias")),
        (skywork_prm_checkpoint, ("v_head.summary.weight",)),
        (qwen_prm_checkpoint, ("model.layers.1.mlp.up_proj.weight",)),
    ],
)
def test_missing_head_weights_are_named(tmp_path, build, dropped):
    path = build(tmp_path / "prm", drop=dropped)
    with pytest.raises(CheckpointError) as load_error:
        load_adapter(path, device="cpu")
    for name in dropped:
        assert name in str(load_error.value)
    if dropped[0].startswith(("score", "v_head")):
        with pytest.raises(CheckpointError) as check_error:
            inspect_checkpoint(path)
        for name in dropped:
            assert name in str(check_error.value)


def test_remote_code_only_config_is_refused(tmp_path):
    import json

    path = qwen_prm_checkpoint(tmp_path / "prm")
    config = json.loads((path / "config.json").read_text())
    config["model_type"] = "qwen2_rm"  # a type only its own configuration_*.py defines
    (path / "config.json").write_text(json.dumps(config))
    for check in (inspect_checkpoint, lambda p: load_adapter(p, device="cpu")):
        with pytest.raises(CheckpointError, match=r"remote code|not built into transformers"):
            check(path)
    _assert_no_remote_code()


def test_registration_check_of_a_native_checkpoint(tmp_path):
    from selector.scoring import build_bootstrap_model

    texts = [p for p, _ in SAMPLES] + [s for _, steps in SAMPLES for s in steps]
    path = build_bootstrap_model(
        texts, tmp_path / "native", vocab_size=300, hidden=16, layers=1, heads=2, max_length=64
    )
    info = inspect_checkpoint(path)
    assert info.adapter == "token-classification" and info.weights_format == "safetensors"
    assert info.parameters == sum(p.numel() for p in load_adapter(path).model.parameters())
    (path / "model.safetensors").rename(path / "elsewhere.bin")
    with pytest.raises(CheckpointError, match="no model weights"):
        inspect_checkpoint(path)
