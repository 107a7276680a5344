"""Atomic file and directory writes (a reader, or a restart after a crash, sees the old content or
the new, never a partial file) and the cache root every layer's artefacts live under."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def default_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Cache root: the argument, else $SHOPASSIST_CACHE, else ~/.cache/shopping-assistant."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SHOPASSIST_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "shopping-assistant"


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, permissions: int | None = None) -> Iterator[IO[Any]]:
    """A file object whose content replaces ``path`` when the block ends without error.

    It writes a temp file beside ``path`` (same file system, so the rename is atomic), fsyncs it
    and ``os.replace``s; on an exception the temp file is removed and ``path`` is untouched.
    ``permissions``: the new file's mode bits (default: the old file's, else 0o644; pass 0o600 for
    secrets).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if permissions is None:
        permissions = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, permissions)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def commit_file(part: str | Path, path: str | Path) -> Path:
    """Move a finished, separately written file (e.g. a resumable download's ``.part``) onto
    ``path`` atomically: fsync its bytes, then ``os.replace`` (same folder, so one rename).

    ``atomic_open`` is for content written in one go; this is for a file that had to survive
    between runs under its own name first. Returns ``path``."""
    part, path = Path(part), Path(path)
    with part.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(part, path)
    return path


def atomic_write(path: str | Path, data: bytes | str, *, permissions: int | None = None) -> Path:
    """Replace ``path`` with ``data`` (str is written as UTF-8) atomically; returns ``path``."""
    with atomic_open(path, "wb", permissions=permissions) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def atomic_dir(final: str | Path, write: Callable[[Path], object]) -> None:
    """Run ``write(tmp_dir)`` into a fresh hidden directory beside ``final``, then swap it in.

    ``final`` keeps its old content until the swap (readers never see a half-written directory);
    a crash or an exception in ``write`` leaves ``final`` as it was and no temp directory behind.
    """
    final = Path(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
