"""Reading YAML for the strict config loader: YAML 1.2 floats, one clear error per failure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from envs.config.errors import ConfigError

__all__ = ["read_yaml", "read_yaml_file"]


class _Yaml12FloatLoader(yaml.SafeLoader):
    """SafeLoader that reads ``3e-4``, ``1e6`` and ``.5`` as floats (YAML 1.2 style)."""


_Yaml12FloatLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


_YAML_FAILURES = (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError,
                  RecursionError)
"""What PyYAML raises on malformed input: besides `yaml.YAMLError`, ``2001-13-01`` is a
ValueError (an impossible date), ``!!timestamp x`` an AttributeError, deep nesting a
RecursionError (found by the property tests in tests/test_property.py)."""


def read_yaml(text: str, origin: str = "<string>") -> Any:
    """Parse YAML text.

    Args:
        text: The YAML document.
        origin: What to call it in messages (a file name, an override).

    Returns:
        The parsed value (YAML 1.2 floats, see `_Yaml12FloatLoader`).

    Raises:
        ConfigError: Malformed YAML, with the file and line where PyYAML knows them.
    """
    try:
        return yaml.load(text, Loader=_Yaml12FloatLoader)  # noqa: S506 - a SafeLoader subclass
    except _YAML_FAILURES as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(f"{origin}: malformed YAML: {detail}") from None


def read_yaml_file(path: str | Path) -> Any:
    """Read a YAML file.

    Args:
        path: The file.

    Returns:
        The parsed value (`read_yaml`).

    Raises:
        ConfigError: The file is missing, unreadable, not UTF-8 text, or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read as UTF-8 text ({err}); "
                          "check the path and permissions") from None
    return read_yaml(text, str(path))
