"""Load versioned YAML prompt templates and render them with checked variables.

A template file is ``templates/<name>.v<version>.yaml`` holding the declared
``variables`` and one ``system``/``user`` pair per language. Placeholders use
``string.Template`` syntax (``$cards`` / ``${cards}``; a literal dollar is
``$$``) so JSON examples with braces need no escaping. Every mistake -- an
undeclared placeholder, a missing or unknown variable at render time -- is an
error, because a silently empty ``$cards`` would let the LLM invent products.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any

import yaml

TEMPLATE_DIR = Path(__file__).parent / "templates"
LANGUAGES = ("en", "zh")
ROLES = ("system", "user")
_FILE_RE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.yaml$")


class PromptError(ValueError):
    """A template file is malformed or was rendered with the wrong variables."""


@dataclass(frozen=True)
class PromptTemplate:
    """One language of one template version."""

    name: str
    version: int
    lang: str
    variables: tuple[str, ...]
    system: str
    user: str
    path: Path

    def render(self, **values: Any) -> list[tuple[str, str]]:
        """``[("system", ...), ("user", ...)]`` with every declared variable substituted."""
        missing = [v for v in self.variables if v not in values]
        unknown = sorted(set(values) - set(self.variables))
        if missing or unknown:
            raise PromptError(
                f"prompt {self.name}.v{self.version} ({self.lang}): missing variables {missing}, "
                f"unknown variables {unknown}; declared {list(self.variables)}"
            )
        strs = {k: "" if v is None else str(v) for k, v in values.items()}
        return [(role, Template(getattr(self, role)).substitute(strs).strip()) for role in ROLES]

    def messages(self, **values: Any) -> list[Any]:
        """The rendered pair as langchain messages, ready for any chat model."""
        from langchain_core.messages import HumanMessage, SystemMessage

        (_, system), (_, user) = self.render(**values)
        return [SystemMessage(content=system), HumanMessage(content=user)]


def available() -> dict[str, list[int]]:
    """Template name -> sorted versions present on disk."""
    out: dict[str, list[int]] = {}
    for path in TEMPLATE_DIR.glob("*.yaml"):
        m = _FILE_RE.match(path.name)
        if m:
            out.setdefault(m["name"], []).append(int(m["version"]))
    return {k: sorted(v) for k, v in sorted(out.items())}


def load(name: str, lang: str = "en", version: int | None = None) -> PromptTemplate:
    """The template ``name`` in ``lang`` (latest version unless ``version`` is given)."""
    versions = available().get(name)
    if not versions:
        raise PromptError(f"no prompt template named {name!r}; available: {sorted(available())}")
    if version is None:
        version = versions[-1]
    if version not in versions:
        raise PromptError(f"prompt {name!r} has no version {version}; available: {versions}")
    if lang not in LANGUAGES:
        raise PromptError(f"unsupported prompt language {lang!r}; expected one of {LANGUAGES}")
    return _load_file(TEMPLATE_DIR / f"{name}.v{version}.yaml", name, version, lang)


@dataclass(frozen=True)
class ReplyStrings:
    """Keyed one-line templates (``kind: strings`` files) for LLM-free replies."""

    name: str
    version: int
    lang: str
    variables: tuple[str, ...]
    strings: dict[str, str]

    def format(self, key: str, **values: Any) -> str:
        """Render ``key``; unknown keys or variables are errors, unused variables are fine."""
        if key not in self.strings:
            raise PromptError(f"{self.name}.v{self.version} ({self.lang}) has no string {key!r}")
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise PromptError(f"{self.name}.v{self.version}: unknown variables {unknown}")
        tpl = Template(self.strings[key])
        missing = sorted(set(tpl.get_identifiers()) - set(values))
        if missing:
            raise PromptError(
                f"{self.name}.v{self.version} ({self.lang}) {key!r}: missing variables {missing}"
            )
        return tpl.substitute({k: "" if v is None else str(v) for k, v in values.items()}).strip()


def load_strings(name: str = "replies", lang: str = "en", version: int | None = None) -> ReplyStrings:
    """A ``kind: strings`` file: template replies keyed by situation, per language."""
    versions = available().get(name)
    if not versions:
        raise PromptError(f"no strings file named {name!r}; available: {sorted(available())}")
    version = versions[-1] if version is None else version
    if version not in versions:
        raise PromptError(f"strings {name!r} have no version {version}; available: {versions}")
    if lang not in LANGUAGES:
        raise PromptError(f"unsupported prompt language {lang!r}; expected one of {LANGUAGES}")
    return _load_strings_file(TEMPLATE_DIR / f"{name}.v{version}.yaml", name, version, lang)


@lru_cache(maxsize=32)
def _load_strings_file(path: Path, name: str, version: int, lang: str) -> ReplyStrings:
    data = _read_yaml(path, name, version)
    if data.get("kind") != "strings":
        raise PromptError(f"{path}: not a strings file (kind: strings); use load() for chat templates")
    variables = _variables(data, path)
    part = data.get(lang)
    if not isinstance(part, dict) or not all(isinstance(v, str) for v in part.values()):
        raise PromptError(f"{path}: language {lang!r} must map keys to strings")
    for key, text in part.items():
        tpl = Template(text)
        if not tpl.is_valid():
            raise PromptError(f"{path}: {lang}.{key} has an invalid placeholder (write $$ for a dollar)")
        undeclared = sorted(set(tpl.get_identifiers()) - set(variables))
        if undeclared:
            raise PromptError(f"{path}: {lang}.{key} uses undeclared variables {undeclared}")
    return ReplyStrings(name=name, version=version, lang=lang, variables=variables, strings=dict(part))


def _read_yaml(path: Path, name: str, version: int) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PromptError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise PromptError(f"{path}: expected a mapping at the top level")
    if data.get("name") != name or int(data.get("version", -1)) != version:
        raise PromptError(
            f"{path}: header says name={data.get('name')!r} version={data.get('version')!r}, "
            f"file name says {name!r} v{version}"
        )
    return data


def _variables(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    variables = data.get("variables") or []
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise PromptError(f"{path}: 'variables' must be a list of names")
    return tuple(variables)


@lru_cache(maxsize=128)
def _load_file(path: Path, name: str, version: int, lang: str) -> PromptTemplate:
    data = _read_yaml(path, name, version)
    if data.get("kind", "chat") != "chat":
        raise PromptError(f"{path}: a {data.get('kind')!r} file; use load_strings() for it")
    variables = _variables(data, path)
    part = data.get(lang)
    if not isinstance(part, dict) or any(not isinstance(part.get(r), str) for r in ROLES):
        raise PromptError(f"{path}: language {lang!r} needs string 'system' and 'user' parts")
    for role in ROLES:
        tpl = Template(part[role])
        if not tpl.is_valid():
            raise PromptError(f"{path}: {lang}.{role} has an invalid placeholder (write $$ for a dollar)")
        undeclared = sorted(set(tpl.get_identifiers()) - set(variables))
        if undeclared:
            raise PromptError(f"{path}: {lang}.{role} uses undeclared variables {undeclared}")
    return PromptTemplate(
        name=name,
        version=version,
        lang=lang,
        variables=tuple(variables),
        system=part["system"],
        user=part["user"],
        path=path,
    )
