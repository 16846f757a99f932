"""GeneratorConfig: validation, the JSON snapshot, and the API key read at call time."""

import json

import pytest

from selector.generation import GeneratorConfig, PromptTemplate


def test_snapshot_round_trips_through_json():
    config = GeneratorConfig(
        base_url="http://gpu-host:8000/v1",
        model="qwen",
        api_key_env="STEPWISE_GENERATOR_KEY",
        n=1000,
        temperature=0.7,
        top_p=0.95,
        max_tokens=512,
        stop=("<|im_end|>",),
        prompt=PromptTemplate(system="s", few_shot=(("p", "a"),)),
        split_rule="newline",
        concurrency=32,
        max_n_per_request=64,
        seed=3,
    )
    snapshot = json.loads(json.dumps(config.to_dict()))
    assert GeneratorConfig.from_dict(snapshot) == config


def test_snapshot_holds_the_variable_name_never_the_key(monkeypatch):
    monkeypatch.setenv("STEPWISE_GENERATOR_KEY", "sk-secret")
    config = GeneratorConfig(api_key_env="STEPWISE_GENERATOR_KEY")
    assert "sk-secret" not in json.dumps(config.to_dict())
    assert config.api_key() == "sk-secret"


def test_api_key_is_read_when_asked(monkeypatch):
    monkeypatch.delenv("STEPWISE_GENERATOR_KEY", raising=False)
    config = GeneratorConfig(api_key_env="STEPWISE_GENERATOR_KEY")
    assert config.api_key() is None
    monkeypatch.setenv("STEPWISE_GENERATOR_KEY", "later")
    assert config.api_key() == "later"
    assert GeneratorConfig().api_key() is None


def test_missing_keys_take_defaults_and_unknown_keys_are_refused():
    assert GeneratorConfig.from_dict({"n": 4}) == GeneratorConfig(n=4)
    with pytest.raises(ValueError, match="api_key"):
        GeneratorConfig.from_dict({"api_key": "sk-secret"})


@pytest.mark.parametrize(
    "changes",
    [
        {"backend": "vllm"},
        {"split_rule": "sentence"},
        {"n": -1},
        {"max_tokens": 0},
        {"concurrency": 0},
        {"top_p": 0.0},
        {"temperature": -0.1},
        {"timeout": 0},
    ],
)
def test_invalid_settings_are_refused(changes):
    with pytest.raises(ValueError):
        GeneratorConfig(**changes)
