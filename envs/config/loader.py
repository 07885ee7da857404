"""Strict configuration loading: YAML -> frozen dataclasses.

One loader for files and for ``key.sub=value`` command-line overrides:

* unknown keys are rejected with their dotted path and a "did you mean" hint;
* wrong types are rejected (a string where a number is expected, a bool for an int);
  YAML 1.1 reads ``3e-4`` as a string, so our YAML reader (`envs.config.yaml_io`) resolves it as
  a float the way YAML 1.2 does, and anything that is still a string is rejected;
* range checks (`check_range`) and cross-field checks live in each dataclass's
  ``__post_init__`` and raise `ConfigError`; a `FieldError` names its field, and
  `from_dict` turns it into the full dotted key (``env.cold_start_s``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from envs.config.checks import FieldError, check_range
from envs.config.errors import ConfigError
from envs.config.suggest import did_you_mean
from envs.config.yaml_io import read_yaml, read_yaml_file

T = TypeVar("T")

__all__ = ["FieldError", "apply_overrides", "check_range", "from_dict", "load_config",
           "to_dict"]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    """``value`` as type ``tp`` (the annotation of the field at dotted ``path``)."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, tp, path)
    if origin is Literal:
        return _convert_literal(value, tp, path)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)  # type: ignore[arg-type]
    if origin is tuple:
        return _convert_tuple(value, tp, path)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return _convert_mapping(value, tp, path)
    scalar = _SCALARS.get(tp)
    if scalar is None:
        raise ConfigError(f"{path}: unsupported field type {_type_name(tp)}")
    return scalar(value, path)


def _convert_union(value: Any, tp: Any, path: str) -> Any:
    options = get_args(tp)
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert(value, option, path)
        except ConfigError as err:
            errors.append(str(err))
    raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} fits none "
                      f"of {_type_name(tp)}")


def _convert_literal(value: Any, tp: Any, path: str) -> Any:
    allowed = get_args(tp)
    if not isinstance(value, Hashable) or value not in allowed:
        hint = did_you_mean(str(value), [str(a) for a in allowed])
        raise ConfigError(f"{path}: {value!r} is not one of {list(allowed)}{hint}")
    return value


def _convert_tuple(value: Any, tp: Any, path: str) -> tuple[Any, ...]:
    args = get_args(tp)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
        raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
    return tuple(_convert(v, a, f"{path}[{i}]")
                 for i, (a, v) in enumerate(zip(args, value, strict=True)))


def _convert_mapping(value: Any, tp: Any, path: str) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {value!r}")
    key_tp, val_tp = get_args(tp) or (str, Any)
    return {_convert(k, key_tp, path): _convert(v, val_tp, f"{path}.{k}")
            for k, v in value.items()}


def _to_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    return value


def _to_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path}: expected an integer, got {value!r} "
                          f"({type(value).__name__})")
    return value


def _to_float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if isinstance(value, str):
            hint = "; write a plain number without quotes (e.g. 3.0e-4)"
        raise ConfigError(f"{path}: expected a number, got {value!r} "
                          f"({type(value).__name__}){hint}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}; NaN and "
                          "infinity are not settings (leave the key out for its default)")
    return number


def _to_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    return value


def _to_path(value: Any, path: str) -> Path:
    if not isinstance(value, str | Path):
        raise ConfigError(f"{path}: expected a path, got {value!r}")
    return Path(value)


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    bool: _to_bool, int: _to_int, float: _to_float, str: _to_str, Path: _to_path,
}


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, strictly.

    Args:
        cls: A (frozen) dataclass type.
        data: Parsed YAML (a mapping; None means all defaults).
        path: Dotted path of ``data`` in the whole document, for messages.

    Returns:
        The instance (nested dataclasses built the same way).

    Raises:
        ConfigError: Unknown or missing keys, wrong types, failed cross-field checks.
    """
    where = path or "<root>"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            dotted = f"{path}.{key}" if path else str(key)
            raise ConfigError(
                f"unknown key {dotted!r}{did_you_mean(str(key), fields)}; "
                f"{cls.__name__} takes: {sorted(fields)}"
            )
    kwargs = {}
    for name, field in fields.items():
        dotted = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], dotted)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key {dotted!r} ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except FieldError as err:
        dotted = f"{path}.{err.key}" if path else err.key
        raise ConfigError(f"{dotted} {err.problem}") from None
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def to_dict(obj: Any) -> Any:
    """A plain-YAML form of a config dataclass (tuples as lists, paths as strings).

    Args:
        obj: A dataclass instance, or any value inside one.

    Returns:
        Dicts, lists and scalars that `from_dict` reads back to an equal instance.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def apply_overrides(data: Mapping[str, Any] | None, overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with ``key.sub=value`` overrides applied.

    Values are parsed with the same YAML reader as files (``1e-4`` is a float, ``[1, 2]``
    a list); the result still goes through `from_dict`, which rejects unknown keys.

    Args:
        data: The document (None: empty).
        overrides: ``key.sub=value`` strings, applied in order.

    Returns:
        The new document (``data`` is not changed).

    Raises:
        ConfigError: An override without ``=``, with an empty key part, through a key
            that is not a section, or with malformed YAML.
    """
    result: dict[str, Any] = _deep_copy(data or {})
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r} has an empty key part")
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = read_yaml(raw, f"override {item!r}")
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> T:
    """Load ``cls`` from an optional YAML file plus overrides, strictly.

    Args:
        cls: The config dataclass.
        path: YAML file; None uses ``defaults`` (or the dataclass defaults).
        overrides: ``key.sub=value`` strings applied on top.
        defaults: Mapping used when no path is given.

    Returns:
        The config.

    Raises:
        ConfigError: An unreadable file, a top level that is not a mapping, or anything
            `from_dict` and `apply_overrides` reject.
    """
    data = read_yaml_file(path) if path is not None else dict(defaults or {})
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return from_dict(cls, apply_overrides(data, overrides))
