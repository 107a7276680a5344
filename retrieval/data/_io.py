"""Small pure readers shared by the loaders: gzip-aware decoding and JSON-lines parsing.

Every reader reports problems as ``DataValidationError`` naming the file and the
first offending line numbers, so a user with a broken export knows where to look.
Nothing here writes to disk.
"""

from __future__ import annotations

import ast
import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval.data.schema import MAX_ROWS_IN_ERROR, DataValidationError

ENCODINGS = ("utf-8", "utf-8-sig")


def read_bytes(path: Path) -> bytes:
    """Raw file bytes, transparently gunzipped (by magic number, not by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataValidationError(f"{path}: corrupt gzip stream ({exc})") from None
    return data


def read_text(path: Path, encoding: str | None = None) -> str:
    """Decode a file as UTF-8 (BOM tolerated) or the given encoding; never guess silently."""
    data = read_bytes(path)
    if encoding is not None:
        try:
            return data.decode(encoding)
        except LookupError:
            raise DataValidationError(f"{path}: unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise _decode_error(path, data, exc, (encoding,)) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _decode_error(path, data, exc, ENCODINGS) from None


def _decode_error(
    path: Path, data: bytes, exc: UnicodeDecodeError, tried: tuple[str, ...]
) -> DataValidationError:
    line = data.count(b"\n", 0, exc.start) + 1
    return DataValidationError(
        f"{path}: cannot decode as {' or '.join(tried)} (pass encoding=..., e.g. 'latin-1', "
        "if the file uses another encoding)",
        [f"line {line}: byte {data[exc.start : exc.start + 1]!r} at offset {exc.start}"],
    )


def iter_json_lines(
    path: Path, *, loose: bool = False, encoding: str | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line.

    ``loose=True`` also accepts Python-literal lines (single quotes, ``None``), the
    format of the original 2014 Amazon dumps. All bad lines are collected and
    reported together after the last good one, so the error lists the first few.
    """
    bad: list[str] = []
    text = read_text(path, encoding)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            record = None
            if loose:
                try:
                    record = ast.literal_eval(line)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    record = None
            if record is None:
                bad.append(f"line {lineno}: {exc.msg}")
                continue
        if not isinstance(record, dict):
            bad.append(f"line {lineno}: expected a JSON object, got {type(record).__name__}")
            continue
        if not bad:
            yield lineno, record
    if bad:
        raise DataValidationError(f"{path}: malformed JSON lines", bad)


class ErrorCollector:
    """Collects offending rows of one kind and raises once, listing the first few."""

    def __init__(self, path: Path | str):
        self.path = path
        self.errors: dict[str, list[str]] = {}

    def add(self, kind: str, where: str) -> None:
        rows = self.errors.setdefault(kind, [])
        rows.append(where)

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        kind, rows = next(iter(self.errors.items()))
        others = [k for k in self.errors if k != kind]
        suffix = f" (also: {', '.join(others)})" if others else ""
        raise DataValidationError(f"{self.path}: {kind}{suffix}", rows)


def parse_price(value: Any) -> float | None:
    """A price as float, ``None`` when absent; raises ``ValueError`` when unusable.

    Accepts numbers and strings like ``"$1,299.00"``; rejects ranges, negatives, NaN.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a price: {value!r}")
    if isinstance(value, int | float):
        price = float(value)
    else:
        text = str(value).strip()
        if text == "" or text.lower() in {"none", "null", "nan", "na", "n/a"}:
            return None
        cleaned = text.replace("$", "").replace(",", "").strip()
        try:
            price = float(cleaned)
        except ValueError:
            raise ValueError(f"not a price: {value!r}") from None
    if math.isnan(price):
        return None
    if not math.isfinite(price) or price < 0:
        raise ValueError(f"not a price >= 0: {value!r}")
    return price


def clean_str(value: Any) -> str | None:
    """Strip a text field; empty, NaN and non-text placeholders become ``None``."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    return text or None


def package_data_file(package: str, relative: str, pip_command: str) -> Path:
    """Path of a data file shipped inside an installed package, without importing it.

    ``importlib.util.find_spec`` on a top-level name only locates the package, so
    heavy imports (torch, etc.) never run just to read a bundled file.
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the demo data ships inside the {package!r} package, which is not installed; "
            f"install it with: {pip_command}"
        )
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{package!r} is installed but has no {relative!r} (wrong version?); reinstall with: {pip_command}"
    )


__all__ = [
    "MAX_ROWS_IN_ERROR",
    "ErrorCollector",
    "clean_str",
    "iter_json_lines",
    "package_data_file",
    "parse_price",
    "read_bytes",
    "read_text",
]
