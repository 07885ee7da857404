"""Command-line error handling shared by every entry point.

A known error (any `envs.config.errors.IpaEnergyError`, which includes the energy package's
meter and log errors) ends a command with one line on stderr, ``<prog>: error: <message>``,
and exit code 2, the code argparse uses for bad arguments. Anything else is a bug and
keeps its traceback. Ctrl-C ends with 130 and one line.

Use::

    @command_line("python -m energy.profiler")
    def main(argv: list[str] | None = None) -> int: ...

    if __name__ == "__main__":
        sys.exit(main())

The argparse ``type=`` helpers `positive_int`, `non_negative_int`, `positive_float`
and `non_negative_float` turn
a nonsensical numeric argument into argparse's own one-line usage error (also exit 2).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable
from typing import ParamSpec

from envs.config.errors import IpaEnergyError
from models.errors import CatalogError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "argument_parser",
    "command_line",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "report_error",
]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

P = ParamSpec("P")


def report_error(prog: str, err: BaseException) -> int:
    """Print ``err`` as one line on stderr and return the exit code for it.

    Args:
        prog: The command's name, printed first.
        err: A package error (its message names the problem and the fix).

    Returns:
        `EXIT_ERROR` (2).
    """
    message = " ".join(str(err).split()) or type(err).__name__
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def command_line(prog: str) -> Callable[[Callable[P, int | None]], Callable[P, int]]:
    """Decorate a ``main`` so package errors end in one line and exit code 2.

    Args:
        prog: The command as a user types it (``python -m energy.profiler``).

    Returns:
        A decorator; the wrapped ``main`` returns its exit code (None counts as 0),
        2 for a package error, 130 for Ctrl-C. Other exceptions propagate (bugs).
    """

    def decorate(main: Callable[P, int | None]) -> Callable[P, int]:
        @functools.wraps(main)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
            try:
                code = main(*args, **kwargs)
            except (IpaEnergyError, CatalogError) as err:
                return report_error(prog, err)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            return 0 if code is None else code

        return wrapper

    return decorate


def argument_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The parser of a command whose ``--help`` prints its module docstring as written.

    Args:
        prog: The command as a user types it (``python -m energy.profiler``).
        description: The help text, usually the module's ``__doc__``.

    Returns:
        An `argparse.ArgumentParser` with `argparse.RawDescriptionHelpFormatter`.
    """
    return argparse.ArgumentParser(
        prog=prog, description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def _bounded(text: str, kind: type[int] | type[float], low: int, *, above: bool = False
             ) -> float:
    """``text`` as ``kind``, at least ``low`` (above it when ``above``)."""
    value = _number(text, kind)
    if value < low or (above and value == low):
        word = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} must be {word} {'>' if above else '>='} {low}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1.

    Args:
        text: The command-line value.

    Returns:
        The integer.

    Raises:
        argparse.ArgumentTypeError: Not an integer, or below 1.
    """
    return int(_bounded(text, int, 1))


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0.

    Args:
        text: The command-line value.

    Returns:
        The integer.

    Raises:
        argparse.ArgumentTypeError: Not an integer, or negative.
    """
    return int(_bounded(text, int, 0))


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0.

    Args:
        text: The command-line value.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: Not a finite number, or negative.
    """
    return float(_bounded(text, float, 0))


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0.

    Args:
        text: The command-line value.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: Not a finite number, or not above 0.
    """
    return float(_bounded(text, float, 0, above=True))
