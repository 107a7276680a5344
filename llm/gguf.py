"""Packaged GGUF models: assemble the chunks that pip packages ship (hash-checked while
streaming) and convert the GGUF once into a plain Hugging Face directory.

GGUF is a llama.cpp format; transformers can read it but slowly (tens of seconds, dequantising
in numpy), so ``llm.models.resolve_llm`` converts it once into fp16 safetensors + tokenizer in a
local cache, and every later load takes seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from llm.registry import GGUFChunk, LLMSpec, ModelIntegrityError
from llm.runtime import set_torch_threads

__all__ = ["assemble_gguf", "convert_gguf", "locate_chunks"]

_READ_BLOCK = 8 * 1024 * 1024


def _chunk_path(chunk: GGUFChunk) -> Path:
    """Locate one chunk on disk; raises ModelIntegrityError when its package is not installed."""
    if chunk.filename is not None:
        # Locate without importing: the package's __init__ may import heavy optional deps.
        spec = importlib.util.find_spec(chunk.module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelIntegrityError(
                f"pip package {chunk.pip_package!r} (module {chunk.module}) is not installed. "
                f"Install it: {chunk.reinstall_hint}",
                [chunk.pip_package],
            )
        for loc in spec.submodule_search_locations:
            candidate = Path(loc) / chunk.filename
            if candidate.exists():
                return candidate
        return Path(next(iter(spec.submodule_search_locations))) / chunk.filename
    try:
        module = importlib.import_module(chunk.module)
        return Path(module.get_part_path())
    except (ImportError, AttributeError) as exc:
        raise ModelIntegrityError(
            f"pip package {chunk.pip_package!r} (module {chunk.module}) is missing or broken ({exc}). "
            f"Reinstall it: {chunk.reinstall_hint}",
            [chunk.pip_package],
        ) from exc


def locate_chunks(spec: LLMSpec) -> list[Path]:
    """The on-disk paths of a packaged model's chunks, in concatenation order."""
    if spec.kind != "packaged-gguf":
        raise ValueError(f"{spec.name!r} is not a packaged GGUF model")
    return [_chunk_path(c) for c in spec.chunks]


def _integrity_error(spec: LLMSpec, bad: Sequence[GGUFChunk], what: str) -> ModelIntegrityError:
    cmds = "\n".join(f"  {c.reinstall_hint}" for c in bad)
    return ModelIntegrityError(
        f"model {spec.name!r}: {what}. Reinstall the package(s) that ship it:\n{cmds}",
        [c.pip_package for c in bad],
    )


def assemble_gguf(
    spec: LLMSpec,
    dest: str | os.PathLike[str],
    chunk_paths: Sequence[str | os.PathLike[str]] | None = None,
    progress: bool = True,
) -> Path:
    """Concatenate a packaged GGUF's chunks into `dest`, verifying hashes while streaming.

    Each chunk is checked against its own pinned hash (so the error names exactly which package is
    broken) and the whole file against the spec's hash. On any failure `dest` is removed and a
    ModelIntegrityError is raised: a partial GGUF never stays on disk. `chunk_paths` overrides
    where the chunks are read from (tests feed corrupted copies this way).
    """
    if spec.kind != "packaged-gguf":
        raise ValueError(f"{spec.name!r} is not a packaged GGUF model")
    paths = [Path(p) for p in chunk_paths] if chunk_paths is not None else locate_chunks(spec)
    if len(paths) != len(spec.chunks):
        raise ValueError(f"model {spec.name!r} has {len(spec.chunks)} chunks, got {len(paths)} chunk paths")
    missing = [c for c, p in zip(spec.chunks, paths, strict=True) if not p.is_file()]
    if missing:
        raise _integrity_error(
            spec, missing, "chunk file(s) missing: " + ", ".join(c.module for c in missing)
        )
    wrong_size = [
        c
        for c, p in zip(spec.chunks, paths, strict=True)
        if c.size is not None and p.stat().st_size != c.size
    ]
    if wrong_size:
        raise _integrity_error(spec, wrong_size, "chunk file(s) have the wrong size (truncated or replaced)")

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    total = sum(p.stat().st_size for p in paths)
    whole = hashlib.sha256()
    try:
        with (
            open(dest, "wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"Assembling {spec.name} GGUF",
                disable=not progress,
                file=sys.stderr,
            ) as bar,
        ):
            for chunk, path in zip(spec.chunks, paths, strict=True):
                part = hashlib.sha256()
                with open(path, "rb") as f:
                    while block := f.read(_READ_BLOCK):
                        part.update(block)
                        whole.update(block)
                        out.write(block)
                        bar.update(len(block))
                if chunk.sha256 is not None and part.hexdigest() != chunk.sha256:
                    raise _integrity_error(
                        spec, [chunk], f"sha256 mismatch in chunk {path.name} from {chunk.pip_package}"
                    )
        if spec.sha256 is not None and whole.hexdigest() != spec.sha256:
            raise _integrity_error(
                spec,
                spec.chunks,
                f"sha256 of the assembled GGUF is {whole.hexdigest()}, expected {spec.sha256}",
            )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


@contextlib.contextmanager
def _shared_gguf_parsing() -> Iterator[None]:
    """Parse the GGUF once instead of three times during one conversion.

    transformers opens a fresh `gguf.GGUFReader` for the tokenizer, the config and the weights,
    and rebuilds gguf's tensor-name map once per module; parsing a 49k-50k token vocabulary
    field by field dominates. Sharing the (read-only) reader and memoising the pure name-map
    function halves the CPU time of a conversion (34 s -> 16 s for SmolLM2-135M) with identical
    weights. Scoped to the conversion and undone afterwards.
    """
    import functools

    import gguf

    orig_reader, orig_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[Any, ...], Any] = {}

    class _SharedReader:
        def __new__(cls, path: Any, *args: Any, **kwargs: Any) -> Any:
            key = (os.fspath(path), args, tuple(sorted(kwargs.items())))
            if key not in readers:
                readers[key] = orig_reader(path, *args, **kwargs)
            return readers[key]

    gguf.GGUFReader = _SharedReader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(orig_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = orig_reader, orig_map
        readers.clear()


def convert_gguf(gguf_path: Path, out_dir: Path, threads: int | None) -> None:
    """GGUF -> dense fp16 HF dir (model + tokenizer + chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    set_torch_threads(threads)
    d, f = str(gguf_path.parent), gguf_path.name
    with _shared_gguf_parsing():
        tokenizer = AutoTokenizer.from_pretrained(d, gguf_file=f)
        # dequantize=True: a plain dense model (nn.Linear), which is what LoRA and save_pretrained need.
        model = AutoModelForCausalLM.from_pretrained(
            d, gguf_file=f, dtype=torch.float16, quantization_config=GgufConfig(dequantize=True)
        )
    # The weights are dense now; drop the GGUF quantizer so they save as ordinary safetensors.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        with contextlib.suppress(AttributeError):
            delattr(model.config, "quantization_config")
    model.config.name_or_path = out_dir.name
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
