"""Configuration as data: argument dataclasses that check their ``Literal`` fields, flat YAML files
that supply their defaults, and argparse options generated from their fields.

Every ``python -m finetune`` subcommand is declared once, as dataclass fields with ``help``
metadata; ``parse_dataclasses`` turns a command line (plus an optional ``--config file.yaml``)
into validated instances. The option shapes are those of ``transformers.HfArgumentParser``
(which ``finetune train`` used before), so every existing command line keeps working:

* ``--field_name`` and ``--field-name``;
* a bool field: ``--flag``, ``--flag true|false``, ``--no_flag`` / ``--no-flag``;
* a ``Literal`` field: argparse ``choices``, so an unknown value exits with the allowed values;
* ``X | None`` fields take an ``X``; a field without a default is a required option.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml


def _unwrap_optional(tp: Any) -> Any:
    """``X | None`` (or ``Optional[X]``) -> ``X``; anything else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def literal_choices(tp: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal`` (optionally ``| None``) type, else None."""
    tp = _unwrap_optional(tp)
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass (its module uses ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def check_literals(obj: Any) -> None:
    """Raise a ValueError naming the field and its allowed values for any ``Literal`` field of the
    dataclass instance ``obj`` that holds another value (called from ``__post_init__``)."""
    for name, tp in field_types(type(obj)).items():
        choices = literal_choices(tp)
        value = getattr(obj, name)
        if choices is not None and value not in choices and not (value is None and _allows_none(tp)):
            allowed = "|".join(str(c) for c in choices)
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _allows_none(tp: Any) -> bool:
    return type(None) in typing.get_args(tp)


def str_to_bool(value: str | bool) -> bool:
    """argparse type of bool options: yes/true/t/y/1 and no/false/f/n/0 (any case)."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def _flags(name: str, prefix: str = "") -> list[str]:
    """``--{prefix}{name}`` in snake_case and, where it differs, kebab-case (``--no_x`` / ``--no-x``)."""
    snake = f"--{prefix}{name}"
    kebab = snake[:2] + snake[2:].replace("_", "-")
    return [snake] if kebab == snake else [snake, kebab]


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field, tp: Any) -> None:
    has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    default = f.default if f.default is not dataclasses.MISSING else None
    kwargs: dict[str, Any] = {"dest": f.name, "help": f.metadata.get("help", "")}
    base = _unwrap_optional(tp)
    choices = literal_choices(tp)
    if base is bool:
        parser.add_argument(
            *_flags(f.name), type=str_to_bool, nargs="?", const=True, default=default, **kwargs
        )
        parser.add_argument(*_flags(f.name, "no_"), action="store_false", dest=f.name, help=argparse.SUPPRESS)
        return
    if choices is not None:
        kwargs["choices"] = choices
        kwargs["type"] = type(choices[0])
    elif base in (int, float, str):
        kwargs["type"] = base
    else:
        raise TypeError(f"{f.name}: no command-line form for type {tp!r}")
    if has_default:
        kwargs["default"] = default
    else:
        kwargs["required"] = True
    parser.add_argument(*_flags(f.name), **kwargs)


def dataclass_parser(
    classes: Sequence[type], prog: str, description: str | None = None
) -> argparse.ArgumentParser:
    """One option per field of every dataclass in ``classes`` (field names must not repeat), plus
    ``--config``: a YAML file of flat ``field: value`` keys used as defaults."""
    doc = description if description is not None else (classes[0].__doc__ or "").strip()
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--config", default=None, help="YAML file with flat keys of the fields below")
    for cls in classes:
        group = parser.add_argument_group(cls.__name__)
        types_ = field_types(cls)
        for f in dataclasses.fields(cls):
            _add_field(group, f, types_[f.name])  # type: ignore[arg-type]
    return parser


def load_yaml_config(path: str | Path, classes: Sequence[type]) -> dict[str, Any]:
    """Flat ``field: value`` keys of a YAML file; unknown keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of argument names to values")
    known = {f.name for cls in classes for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
    return data


def parse_dataclasses(classes: Sequence[type], argv: Sequence[str], prog: str) -> list[Any]:
    """Instances of ``classes`` from ``argv``: ``--config`` values first, command-line options over
    them; each instance validates itself (``__post_init__``), a ValueError names the bad field."""
    parser = dataclass_parser(classes, prog)
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--config", default=None)
    pre, _ = pre_parser.parse_known_args(list(argv))
    if pre.config:
        overrides = load_yaml_config(pre.config, classes)
        parser.set_defaults(**overrides)
        for action in parser._actions:  # a required field the YAML file supplies is no longer required
            if action.dest in overrides:
                action.required = False
    ns = parser.parse_args(list(argv))
    return [cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)}) for cls in classes]
