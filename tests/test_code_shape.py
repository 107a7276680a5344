"""The code-shape rule of the developer guide, checked on every product module.

Product modules (``assistant``, ``retrieval``, ``finetune``, ``llm``, ``prompts``, ``app.py``; bench
excluded) stay under 600 lines and their functions under 80. A module that must break the rule says
why in its docstring, one line per exception, as ``Size exception: <function name or 'module'>:
<reason>``, so the reason is read where the code is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assistant", "retrieval", "finetune", "llm", "prompts")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
_EXCEPTION = re.compile(r"^\s*Size exception:\s*([\w.]+)\s*:\s*\S", re.MULTILINE)


def product_modules() -> list[Path]:
    files = [ROOT / "app.py"] if (ROOT / "app.py").exists() else []
    for pkg in PACKAGES:
        if (ROOT / pkg).is_dir():
            files += sorted((ROOT / pkg).rglob("*.py"))
    return files


def shape_violations(path: Path, root: Path = ROOT) -> list[str]:
    """Lines and functions over the limits that the module's docstring does not excuse."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    excused = set(_EXCEPTION.findall(ast.get_docstring(tree) or ""))
    found = []
    n_lines = len(source.splitlines())
    if n_lines > MAX_MODULE_LINES and "module" not in excused:
        found.append(f"{path.relative_to(root)}: {n_lines} lines > {MAX_MODULE_LINES}")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES and node.name not in excused:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {length} lines")
    return found


def test_product_modules_and_functions_stay_small():
    violations = [v for path in product_modules() for v in shape_violations(path)]
    assert not violations, "over the size rule (split, or add a 'Size exception:' line):\n" + "\n".join(
        violations
    )


def test_the_checker_sees_a_long_function_and_honours_an_exception(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    plain = tmp_path / "plain.py"
    plain.write_text(f'"""A module."""\n\n\ndef long():\n{body}\n', encoding="utf-8")
    excused = tmp_path / "excused.py"
    excused.write_text(
        f'"""A module.\n\nSize exception: long: one table-driven step.\n"""\n\n\ndef long():\n{body}\n',
        encoding="utf-8",
    )
    assert shape_violations(plain, tmp_path) == [f"plain.py:4 long: {MAX_FUNCTION_LINES + 1} lines"]
    assert shape_violations(excused, tmp_path) == []
