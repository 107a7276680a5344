"""``AssistantConfig``: validated settings, YAML round trip, keyword overrides."""

from __future__ import annotations

import dataclasses

import pytest

from assistant.config import AssistantConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"k": 0}, "k must be >= 1"),
        ({"k": True}, "k: True is not a valid value"),
        ({"k": 2.5}, "k: 2.5 is not a valid value"),
        ({"max_new_tokens": 0}, "max_new_tokens must be >= 1"),
        ({"max_sentences": 0}, "max_sentences must be >= 1 or None"),
        ({"llm_cards": -1}, "llm_cards must be >= 1 or None"),
        ({"rerank_top": 25}, "rerank_top must be in 2..20"),
        ({"rerank": "gpt"}, "rerank: 'gpt' is not a valid value"),
        ({"llm_quantize": "fp8"}, "llm_quantize: 'fp8' is not a valid value"),
        ({"near_duplicate_cos": 1.5}, "near_duplicate_cos must be a cosine"),
        ({"filter_only_relevance": -0.1}, "filter_only_relevance must be in"),
        ({"name_title_relevance": 1.5}, "name_title_relevance must be in"),
        ({"max_message_chars": 5000}, "max_message_chars must be in 1..2000"),
        ({"retrieve_pool": 0}, "retrieve_pool must be >= 1"),
        ({"embedder": None}, "embedder: None is not a valid value"),
        ({"prose_guard": "yes"}, "prose_guard: 'yes' is not a valid value"),
    ],
)
def test_bad_values_raise_a_clear_value_error(changes, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        AssistantConfig(**changes)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        dataclasses.replace(AssistantConfig(), **changes)


def test_defaults_are_valid_and_frozen() -> None:
    cfg = AssistantConfig()
    assert cfg.k == 5 and cfg.rerank == "none" and cfg.max_sentences == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.k = 3  # type: ignore[misc]
    assert AssistantConfig(rerank=None).rerank == "none"  # the documented "off" of from_dataset


def test_yaml_round_trip(tmp_path) -> None:
    cfg = AssistantConfig(k=8, max_sentences=None, rerank="llm", llm=None, near_duplicate_cos=0.85)
    path = tmp_path / "assistant.yaml"
    cfg.to_yaml(path)
    assert AssistantConfig.from_yaml(path) == cfg
    partial = tmp_path / "partial.yaml"
    partial.write_text("k: 3\nllm: null\n")
    assert AssistantConfig.from_yaml(partial) == AssistantConfig(k=3, llm=None)


def test_yaml_with_unknown_or_bad_fields_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("k: 3\nretrieval_pool: 9\n")
    with pytest.raises(ValueError, match=r"unknown assistant config fields \['retrieval_pool'\]"):
        AssistantConfig.from_yaml(path)
    path.write_text("k: many\n")
    with pytest.raises(ValueError, match="k: 'many' is not a valid value"):
        AssistantConfig.from_yaml(path)
    path.write_text("- k\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        AssistantConfig.from_yaml(path)
