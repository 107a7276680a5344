"""retrieval.files: atomic writes leave the old content, never a partial file, on failure."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.files import atomic_dir, atomic_open, atomic_write, commit_file


def test_atomic_write_replaces_and_creates_parents(tmp_path):
    path = tmp_path / "a" / "b.json"
    atomic_write(path, "first")
    atomic_write(path, b"second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_failed_write_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "m.npy"
    atomic_write(path, b"old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write(b"half of the new con")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.npy"]


def test_atomic_open_streams_numpy(tmp_path):
    path = tmp_path / "x.npy"
    with atomic_open(path) as f:
        np.save(f, np.arange(3))
    assert np.load(path).tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        atomic_open(path, "a").__enter__()


def test_atomic_dir_swaps_whole_directory(tmp_path):
    final = tmp_path / "index"
    atomic_dir(final, lambda d: (d / "v1.txt").write_text("1"))
    atomic_dir(final, lambda d: (d / "v2.txt").write_text("2"))
    assert sorted(p.name for p in final.iterdir()) == ["v2.txt"]

    def broken(d):
        (d / "partial.txt").write_text("?")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_dir(final, broken)
    assert sorted(p.name for p in final.iterdir()) == ["v2.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_permissions_default_to_the_old_file_and_can_be_set(tmp_path):
    path = tmp_path / "r.json"
    atomic_write(path, "{}")
    assert path.stat().st_mode & 0o777 == 0o644
    atomic_write(path, "{}", permissions=0o600)
    atomic_write(path, '{"a": 1}')
    assert path.stat().st_mode & 0o777 == 0o600


def test_commit_file_moves_a_finished_part_over_the_old_file(tmp_path):
    path = tmp_path / "dump.gz"
    atomic_write(path, b"old")
    part = tmp_path / "dump.gz.part"
    part.write_bytes(b"new, written across runs")
    assert commit_file(part, path) == path
    assert path.read_bytes() == b"new, written across runs"
    assert [p.name for p in tmp_path.iterdir()] == ["dump.gz"]
