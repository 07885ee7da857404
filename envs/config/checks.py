"""Range checks of config fields, named by their key (used by every config dataclass).

A check raises `FieldError` with the field's own name; `envs.config.loader.from_dict` prefixes
it with the section's dotted path, so a user reads ``env.cold_start_s must be >= 0 s``.
"""

from __future__ import annotations

from envs.config.errors import ConfigError

__all__ = ["FieldError", "check_range"]


class FieldError(ConfigError):
    """A value that fails its own range check, raised by a config ``__post_init__``.

    `from_dict` prefixes ``key`` with the section's dotted path, so the message names
    ``env.cold_start_s`` rather than ``cold_start_s``.

    Args:
        key: The field's name (or a dotted path below the section).
        problem: What is wrong and how to fix it, e.g. "must be >= 0 s, got -5".
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key
        self.problem = problem


def check_range(key: str, value: float | None, *, low: float | None = None,
                high: float | None = None, low_open: bool = False, unit: str = "",
                fix: str = "") -> None:
    """Raise a `FieldError` unless ``low <(=) value <= high`` (None passes: unset).

    Args:
        key: The field's name, for the message.
        value: The value (None is accepted: the field's "unset").
        low: Smallest allowed value (None: no lower bound).
        high: Largest allowed value (None: no upper bound).
        low_open: ``low`` itself is not allowed (``value > low``).
        unit: Unit named in the message (``s``, ``ms``, ``cores``).
        fix: What the user should do, appended to the message.

    Raises:
        FieldError: ``value`` is out of range.
    """
    if value is None:
        return
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"<= {high:g}")
        unit_text = f" {unit}" if unit else ""
        raise FieldError(key, f"must be {' and '.join(bounds)}{unit_text}, got {value!r}"
                              f"{'; ' + fix if fix else ''}")
