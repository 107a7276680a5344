"""LoRA fine-tuning of a chat LLM on generated data (``python -m finetune train --config x.yaml``).

Shaped like peft's ``examples/sft/train.py``: argument dataclasses with help text
(``finetune.arguments``, parsed by ``finetune.config``), launched by ``accelerate launch
--config_file ...``; ``train`` builds a ``finetune.trainer.Trainer`` and runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from finetune.arguments import DataArguments, ModelArguments, TrainArguments
from finetune.card import write_card
from finetune.config import parse_dataclasses
from finetune.trainer import Trainer, TrainResult

ARG_CLASSES = (ModelArguments, DataArguments, TrainArguments)


def parse_train_args(
    argv: Sequence[str] | None = None, prog: str = "python -m finetune train"
) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    """``--config file.yaml`` (flat keys) supplies defaults; any ``--field value`` overrides it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    margs, dargs, targs = parse_dataclasses(ARG_CLASSES, argv, prog)
    return margs, dargs, targs


def train(margs: ModelArguments, dargs: DataArguments, targs: TrainArguments) -> TrainResult:
    """Run (or resume) one LoRA training; returns the result and writes the run folder, the
    adapter's model card (``adapter/README.md``) included."""
    trainer = Trainer(margs, dargs, targs).setup()
    result = trainer.run()
    if trainer.is_main:
        write_card(result.adapter_dir, margs, dargs, targs, result)
    return result
