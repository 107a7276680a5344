"""Issue #20 item 4: an understanding adapter and a reply adapter loaded together, one per stage.

The adapters are real peft LoRA adapters of the tiny test LLM (``get_peft_model`` +
``save_pretrained``, as tests/test_models.py makes one), beside the training config and data
manifest ``finetune train`` writes; the reply adapter's LoRA B matrices are twice the understanding
adapter's, so a loaded model's merged weights say which adapter it carries. No training: what is
tested is the routing, the checks and the entry points, not what an adapter learned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from assistant.adapters import UNDERSTAND_TASK
from assistant.config import AssistantConfig
from assistant.llm_setup import chat_models
from llm.listwise import ADAPTER_DATA_MANIFEST
from llm.registry import TEST_LLM
from shopping_assistant.cli import main as cli_main


def _finish_adapter(path: Path, task: str, base: str = TEST_LLM) -> Path:
    """What ``finetune train`` writes beside the LoRA weights: its config and the data manifest."""
    (path / "training_config.json").write_text(json.dumps({"model": {"model": base, "lora_r": 4}}))
    (path / ADAPTER_DATA_MANIFEST).write_text(json.dumps({"task": task, "source": {"name": "toy-shop"}}))
    return path


def _copy_adapter(src: Path, dst: Path, task: str, base: str = TEST_LLM) -> Path:
    shutil.copytree(src, dst)
    return _finish_adapter(dst, task, base)


@pytest.fixture(scope="module")
def adapters(tiny_llm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from peft import LoraConfig, get_peft_model

    from llm.models import load_llm

    root = tmp_path_factory.mktemp("two-adapters")
    model, _ = load_llm(str(tiny_llm_dir), threads=1)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():  # small: the merged models still talk like the base model
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.01)
    peft_model.save_pretrained(root / "understand")
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(2.0)
    peft_model.save_pretrained(root / "reply")
    understand = _finish_adapter(root / "understand", UNDERSTAND_TASK)
    reply = _finish_adapter(root / "reply", "reply")
    return {
        "understand": understand,
        "reply": reply,
        "understand2": _copy_adapter(understand, root / "understand2", UNDERSTAND_TASK),
        "listwise": _copy_adapter(reply, root / "listwise", "recommend"),
        "other_base": _copy_adapter(reply, root / "other-base", "reply", base="qwen2.5-coder-0.5b"),
    }


def _config(llm_dir: Path, *paths: Path, **changes) -> AssistantConfig:
    return AssistantConfig(
        llm=str(llm_dir), adapter=[str(p) for p in paths], llm_quantize="none", threads=1, **changes
    )


def _q_proj_delta(model, base) -> torch.Tensor:
    def weight(m) -> torch.Tensor:
        return m.get_decoder().layers[0].self_attn.q_proj.weight.detach()

    return weight(model) - weight(base)


# --- both adapters, each on its stage --------------------------------------------------------------


def test_both_adapters_load_each_on_its_stage(adapters, tiny_llm_dir, tiny_llm) -> None:
    cfg = _config(tiny_llm_dir, adapters["reply"], adapters["understand"])  # the order does not matter
    assert cfg.adapters == (str(adapters["reply"]), str(adapters["understand"]))
    chat, understand = chat_models(cfg.llm, cfg)
    assert Path(chat.adapter) == adapters["reply"] and chat.loaded.adapter == adapters["reply"].resolve()
    assert Path(understand.adapter) == adapters["understand"]
    assert understand.loaded.adapter == adapters["understand"].resolve()
    assert chat.loaded is not understand.loaded  # each on its own copy of the base model
    # The merged weights are the adapters' own: the reply LoRA is twice the understanding one.
    chat_delta = _q_proj_delta(chat.loaded.model, tiny_llm.model)
    understand_delta = _q_proj_delta(understand.loaded.model, tiny_llm.model)
    assert understand_delta.abs().max() > 1e-6
    assert torch.allclose(chat_delta, 2 * understand_delta, atol=1e-6)
    again = chat_models(cfg.llm, _config(tiny_llm_dir, adapters["understand"], adapters["reply"]))
    assert again[0].loaded is chat.loaded and again[1].loaded is understand.loaded  # shared in-process


def test_one_adapter_keeps_the_other_stage_on_the_base_model(adapters, tiny_llm_dir) -> None:
    chat, understand = chat_models(str(tiny_llm_dir), _config(tiny_llm_dir, adapters["understand"]))
    assert chat.adapter is None and Path(understand.adapter) == adapters["understand"]
    chat, understand = chat_models(str(tiny_llm_dir), _config(tiny_llm_dir, adapters["reply"]))
    assert Path(chat.adapter) == adapters["reply"] and understand is None


def test_the_assistant_wires_both_and_replies(adapters, tiny_llm_dir, beauty_index, tmp_path) -> None:
    from assistant import ShoppingAssistant
    from assistant.sessions import SessionStore

    cfg = _config(tiny_llm_dir, adapters["understand"], adapters["reply"], understand_llm=True)
    chat, understand = chat_models(cfg.llm, cfg)
    bot = ShoppingAssistant(
        beauty_index, chat, SessionStore(tmp_path / "s"), cfg, understand_model=understand
    )
    assert Path(bot.understander._understand_llm.adapter) == adapters["understand"]
    assert Path(bot.llm.adapter) == adapters["reply"]
    assert bot.config.adapters == (str(adapters["understand"]), str(adapters["reply"]))
    reply = bot.chat("a moisturizer under $30", session_id="s")
    assert reply.items and reply.text and reply.meta["llm"] is not None  # the reply model was asked


# --- what is refused, never dropped ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "tasks", "stage"),
    [
        ("understand", "understand2", ("understand", "understand"), "the understanding stage"),
        ("reply", "listwise", ("reply", "recommend"), "the chat model"),
    ],
)
def test_two_adapters_for_one_stage_are_refused_naming_both(
    adapters, tiny_llm_dir, first, second, tasks, stage
) -> None:
    with pytest.raises(ValueError) as err:
        _config(tiny_llm_dir, adapters[first], adapters[second])
    message = str(err.value)
    assert message.startswith(f"adapter: two adapters for {stage}: ")
    assert str(adapters[first]) in message and str(adapters[second]) in message
    assert (
        f"{adapters[first]} (task {tasks[0]})" in message
        and f"{adapters[second]} (task {tasks[1]})" in message
    )
    with pytest.raises(ValueError, match="two adapters for"):  # the same folder twice, too
        _config(tiny_llm_dir, adapters[first], adapters[first])


def test_every_adapter_of_a_pair_is_checked(adapters, tiny_llm_dir, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"adapter .*other-base was trained on 'qwen2\.5-coder-0\.5b'"):
        _config(tiny_llm_dir, adapters["understand"], adapters["other_base"])
    with pytest.raises(ValueError, match="is not a LoRA adapter directory"):
        _config(tiny_llm_dir, adapters["understand"], tmp_path)
    with pytest.raises(ValueError, match="cannot be applied to a remote LLM"):
        _config(tiny_llm_dir, adapters["understand"], adapters["reply"], llm_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match=r"adapter: \(1, 2\) is not a valid value"):
        AssistantConfig(llm=str(tiny_llm_dir), adapter=[1, 2])


def test_one_path_stays_a_string_and_none_stays_none(adapters, tiny_llm_dir) -> None:
    one = _config(tiny_llm_dir, adapters["reply"])
    assert one.adapter == str(adapters["reply"]) and one.adapters == (str(adapters["reply"]),)
    assert one == AssistantConfig(
        llm=str(tiny_llm_dir), adapter=adapters["reply"], llm_quantize="none", threads=1
    )
    assert _config(tiny_llm_dir).adapter is None and AssistantConfig().adapters == ()


def test_yaml_round_trip_with_two_adapters(adapters, tiny_llm_dir, tmp_path) -> None:
    cfg = _config(tiny_llm_dir, adapters["understand"], adapters["reply"])
    path = tmp_path / "assistant.yaml"
    cfg.to_yaml(path)
    assert yaml.safe_load(path.read_text())["adapter"] == [
        str(adapters["understand"]),
        str(adapters["reply"]),
    ]
    assert AssistantConfig.from_yaml(path) == cfg
    written = tmp_path / "by-hand.yaml"
    written.write_text(
        f"llm: {tiny_llm_dir}\nllm_quantize: none\nthreads: 1\n"
        f"adapter:\n  - {adapters['understand']}\n  - {adapters['reply']}\n"
    )
    assert AssistantConfig.from_yaml(written) == cfg
    written.write_text(f"llm: {tiny_llm_dir}\nadapter: [{adapters['reply']}, {adapters['listwise']}]\n")
    with pytest.raises(ValueError, match="two adapters for the chat model"):
        AssistantConfig.from_yaml(written)


# --- the command line --------------------------------------------------------------------------------


def test_the_cli_parsers_take_adapter_twice() -> None:
    from assistant.http_api import parse_args as serve_args
    from assistant.ui.launch import parse_args as ui_args

    for parse in (ui_args, serve_args):
        assert parse(["--adapter", "u", "--adapter", "r"]).adapter == ["u", "r"]
        assert parse(["--adapter", "u"]).adapter == ["u"]
        assert parse([]).adapter is None


@pytest.mark.parametrize("command", ["chat", "serve"])
def test_commands_pass_both_adapters_to_the_config(adapters, tiny_llm_dir, tmp_path, capsys, command) -> None:
    argv = [command, "--llm", str(tiny_llm_dir), "--cache-dir", str(tmp_path)]
    pair = ["--adapter", str(adapters["understand"]), "--adapter", str(adapters["understand2"])]
    assert cli_main([*argv, *pair]) == 2  # refused before the dataset or the model is loaded
    err = capsys.readouterr().err
    assert "two adapters for the understanding stage" in err
    assert str(adapters["understand"]) in err and str(adapters["understand2"]) in err
