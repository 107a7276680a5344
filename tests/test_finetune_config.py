"""Argument dataclasses validate themselves; every `python -m finetune` command's options come from
their fields (no LLM needed)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import get_args

import pytest

from finetune.__main__ import COMMANDS, main
from finetune.arguments import (
    DataArguments,
    EvalConfig,
    GenerateConfig,
    ModelArguments,
    TrainArguments,
    TrainProtocol,
)
from finetune.config import dataclass_parser, parse_dataclasses
from finetune.train import ARG_CLASSES, parse_train_args

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "finetune" / "configs").glob("*.yaml"))


def _action(parser, dest: str):
    return next(a for a in parser._actions if a.dest == dest and a.option_strings[0].startswith(f"--{dest}"))


@pytest.mark.parametrize(
    ("make", "field", "bad", "allowed"),
    [
        (lambda v: GenerateConfig(data="d", out="o", train_protocol=v), "train_protocol", "mixd", "mixed"),
        (lambda v: GenerateConfig(data="d", out="o", teacher=v), "teacher", "bert", "lexical|none"),
        (lambda v: EvalConfig(data="d", dtype=v), "dtype", "int8", "bfloat16"),
        (lambda v: ModelArguments(dtype=v), "dtype", "float64", "float32"),
        (lambda v: DataArguments(data_dir="d", listwise_loss=v), "listwise_loss", "ce", "verbalizer|lm"),
        (lambda v: DataArguments(data_dir="d", eval_source=v), "eval_source", "test", "dev|train"),
        (lambda v: TrainArguments(output_dir="o", lr_scheduler=v), "lr_scheduler", "step", "cosine"),
        (lambda v: TrainArguments(output_dir="o", lr_clock=v), "lr_clock", "epochs", "steps|time"),
        (lambda v: TrainArguments(output_dir="o", mixed_precision=v), "mixed_precision", "fp8", "no|bf16"),
    ],
)
def test_literal_field_rejects_unknown_value(make, field: str, bad: str, allowed: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be one of .*{re.escape(allowed)}.*, got '{bad}'$"):
        make(bad)


def test_range_and_cross_field_rules() -> None:
    with pytest.raises(ValueError, match="n_candidates"):
        GenerateConfig(data="d", out="o", n_candidates=21)
    with pytest.raises(ValueError, match="distill_weight"):
        DataArguments(data_dir="d", distill_weight=1.5)
    with pytest.raises(ValueError, match="verbalizer"):
        DataArguments(data_dir="d", distill_weight=0.5, listwise_loss="lm")
    with pytest.raises(ValueError, match="curriculum"):
        DataArguments(data_dir="d", tasks="listwise", curriculum="rebuy:10")
    with pytest.raises(ValueError, match="max_train_seconds"):
        TrainArguments(output_dir="o", lr_clock="time")
    with pytest.raises(ValueError, match="batch_size"):
        TrainArguments(output_dir="o", batch_size=0)
    with pytest.raises(ValueError, match="lora_layers"):
        ModelArguments(lora_layers="bottom4")
    with pytest.raises(ValueError, match="protocols"):
        EvalConfig(data="d", protocols="retrieved,popular")
    with pytest.raises(ValueError, match="data_dir is required"):
        DataArguments(data_dir="")
    ok = TrainArguments(output_dir="o", lr_clock="time", max_train_seconds=10)
    assert dataclasses.replace(ok, lr_scheduler="cosine").lr_scheduler == "cosine"


def test_literal_field_gets_choices_and_help() -> None:
    parser = dataclass_parser([GenerateConfig], "generate")
    action = _action(parser, "train_protocol")
    assert tuple(action.choices) == get_args(TrainProtocol)
    assert action.option_strings == ["--train_protocol", "--train-protocol"]
    assert "negatives of training prompts" in action.help
    assert _action(parser, "n_candidates").type is int and _action(parser, "n_candidates").default == 20
    assert _action(parser, "out").required  # no default: a required option
    parser = dataclass_parser(ARG_CLASSES, "train")
    assert tuple(_action(parser, "lr_scheduler").choices) == ("linear", "cosine", "constant")
    assert _action(parser, "max_train_examples").type is int  # `int | None`
    assert _action(parser, "max_train_examples").default is None


def test_unknown_value_exits_with_the_allowed_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--data", "d", "--out", "o", "--train-protocol", "mixd"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--train_protocol/--train-protocol: invalid choice: 'mixd'" in err
    assert "'retrieved', 'random', 'recalled', 'mixed'" in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data_dir", "d", "--output_dir", "o", "--lr_scheduler", "step"])
    assert exc.value.code == 2
    assert "invalid choice: 'step'" in capsys.readouterr().err
    # A range rule (not expressible as choices) is one clear line too, exit status 2.
    assert main(["evaluate", "--data", "d", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: batch_size must be >= 1, got 0"


def test_every_command_is_generated_from_its_dataclasses(capsys: pytest.CaptureFixture[str]) -> None:
    for name, command in COMMANDS.items():
        parser = dataclass_parser(command.classes, name)
        dests = {a.dest for a in parser._actions}
        for cls in command.classes:
            assert {f.name for f in dataclasses.fields(cls)} <= dests, (name, cls)
    with pytest.raises(SystemExit):
        main(["toydata", "--help"])
    assert "--seed" in capsys.readouterr().out


def test_flag_spellings_of_the_existing_command_lines() -> None:
    argv = ["--data", "d", "--out", "o", "--n-candidates", "10", "--max_history", "5", "--no-chat"]
    (cfg,) = parse_dataclasses([GenerateConfig], [*argv, "--overwrite"], "generate")
    assert (cfg.n_candidates, cfg.max_history, cfg.chat, cfg.overwrite) == (10, 5, False, True)
    (cfg,) = parse_dataclasses([GenerateConfig], ["--data", "d", "--out", "o", "--chat", "false"], "generate")
    assert cfg.chat is False
    base = ["--data_dir", "d", "--output_dir", "o"]
    _, _, targs = parse_train_args([*base, "--progress", "false", "--resume"])
    assert (targs.progress, targs.resume) == (False, True)
    _, dargs, targs = parse_train_args([*base, "--no_progress", "--no-eval-listwise", "--resume", "false"])
    assert (targs.progress, dargs.eval_listwise, targs.resume) == (False, False, False)
    argv = ["--data", "d", "--max_users", "7", "--no-progress"]
    (ecfg,) = parse_dataclasses([EvalConfig], argv, "evaluate")
    assert (ecfg.max_users, ecfg.progress) == (7, False)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_yaml_configs_load_into_the_dataclasses(path: Path) -> None:
    margs, dargs, targs = parse_train_args(["--config", str(path), "--seed", "5"])
    assert targs.seed == 5  # the command line overrides the file
    assert dargs.data_dir and targs.output_dir  # required fields the file supplies
    assert isinstance(margs.lora_r, int) and isinstance(targs.learning_rate, float)


def test_yaml_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data_dir: d\noutput_dir: o\nlr_scheduler: step\n")
    message = "lr_scheduler must be one of linear|cosine|constant, got 'step'"
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_train_args(["--config", str(bad)])
    bad.write_text("data_dir: d\noutput_dir: o\nlearning_rte: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rte'\]"):
        parse_train_args(["--config", str(bad)])
    assert main(["train", "--config", str(bad)]) == 2
