"""Training checkpoints: ``<output_dir>/checkpoints/checkpoint-NNNNNN`` folders, each written into a
temporary folder and renamed (a crash never leaves a half checkpoint), with ``trainer_state.json``
(the ``TrainState`` and the RNG states) written last to mark it complete."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
"""Written last into a checkpoint: a checkpoint without it is incomplete and ignored."""


@dataclass
class TrainState:
    """What a checkpoint's ``trainer_state.json`` holds (besides the RNG states): where the run is."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    """Micro-batches of ``epoch`` already trained on: a resume skips exactly these."""
    eval_history: list[dict[str, float]] = field(default_factory=list)
    tokens: int = 0
    train_seconds: float = 0.0
    """Training-loop wall time of every run of this job so far."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, Any]:
        """The state plus the python / numpy / torch RNG states (``restore_rng`` puts them back)."""
        import torch

        full = dataclasses.asdict(self)
        full["rng"] = {
            "python": random.getstate(),
            "numpy": _np_state_json(np.random.get_state()),
            "torch": torch.get_rng_state().tolist(),
        }
        return full


def restore_rng(raw: dict[str, Any]) -> None:
    """Put back the RNG states a ``TrainState.to_dict`` saved (older checkpoints have none)."""
    import torch

    if "rng" in raw:
        random.setstate(_tuplify(raw["rng"]["python"]))
        np.random.set_state(_np_state(raw["rng"]["numpy"]))
        torch.set_rng_state(torch.tensor(raw["rng"]["torch"], dtype=torch.uint8))


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with a state file), oldest first."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]))


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


def _np_state_json(st: tuple) -> list:
    return [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])]


def _np_state(st: list) -> tuple:
    return (st[0], np.array(st[1], dtype=np.uint32), st[2], st[3], st[4])
