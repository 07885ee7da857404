"""Trace files: per-second request rates read strictly, each bad value named.

A trace is a 1-D float64 array of requests per second, one value per second. Files follow
IPA's format (whitespace-separated numbers on one or many lines, e.g. the Twitter trace as one
line of 1,899,061 integers) or hold one value a line. `load_env_workload` assembles what an
env plays: a trace file or a synthetic pattern (`envs.workload.synthetic`), split into warm-up
history and playable seconds.
"""

from __future__ import annotations

import math
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from envs.config.errors import ConfigError, TraceError
from envs.workload.synthetic import PATTERNS, synthetic_trace

if TYPE_CHECKING:
    from envs.workload.settings import WorkloadConfig

__all__ = ["arrival_counts", "load_env_workload", "load_trace"]

_FORMAT_HINT = "a trace holds non-negative requests/s values separated by whitespace"


def _bad_token(token: str) -> str | None:
    """Return why a trace token is unusable, or None when it is a valid rate."""
    try:
        value = float(token)
    except ValueError:
        return "is not a number"
    if not math.isfinite(value):
        return "is not finite (NaN or infinity)"
    if value < 0:
        return "is negative"
    return None


def _locate_error(path: Path, text: str) -> TraceError:
    """Scan a trace line by line and build the error for its first bad token."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        for token in line.split():
            reason = _bad_token(token)
            if reason is not None:
                return TraceError(
                    f"trace file {path}, line {lineno}: token {token!r} {reason}; {_FORMAT_HINT}"
                )
    return TraceError(f"trace file {path}: could not parse the values; {_FORMAT_HINT}")


def _read_text(path: Path) -> str:
    """Read a trace file, turning I/O problems into a TraceError with the fix."""
    if not path.exists():
        raise TraceError(
            f"trace file {path} does not exist: pass the path of a workload trace "
            f"({_FORMAT_HINT}) or use a synthetic pattern, one of {', '.join(PATTERNS)}"
        )
    if path.is_dir():
        raise TraceError(f"trace file {path} is a directory: pass the path of a trace file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(
            f"trace file {path} is not UTF-8 text (byte {exc.start}); {_FORMAT_HINT}"
        ) from exc
    except OSError as exc:
        raise TraceError(f"trace file {path} cannot be read: {exc}") from exc


def _check_window(start: int | None, end: int | None) -> None:
    """Reject negative or reversed [start, end) bounds."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 0):
            raise ConfigError(f"trace {name}={value!r} must be a non-negative integer second")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"trace window end={end} must be greater than start={start}")


def load_trace(
    path: str | Path,
    damping: float = 1.0,
    start: int | None = None,
    end: int | None = None,
) -> np.ndarray:
    """Load a request-rate trace, one value per second.

    Args:
        path: Text file of whitespace-separated numbers (IPA's one-line format or one value
            a line). Integers and floats are accepted.
        damping: Divide every value by this factor and take the integer floor, as IPA does
            (IPA's windows use 8). The default 1.0 leaves values untouched.
        start: First second to keep (inclusive); None keeps from the beginning.
        end: Second to stop at (exclusive); None keeps to the end.

    Returns:
        A float64 array of requests/s for seconds [start, end).

    Raises:
        TraceError: The file is missing, unreadable or empty, holds a token that is not a
            finite non-negative number (the message names the file, line and token), or the
            window selects no seconds.
        ConfigError: damping is not a positive finite number, or start/end are invalid.
    """
    path = Path(path)
    if not (isinstance(damping, Real) and math.isfinite(damping) and damping > 0):
        raise ConfigError(f"trace damping={damping!r} must be a positive finite number")
    _check_window(start, end)
    text = _read_text(path)
    tokens = text.split()
    if not tokens:
        raise TraceError(f"trace file {path}, line 1: file is empty; {_FORMAT_HINT}")
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        raise _locate_error(path, text) from None
    if not (np.isfinite(values).all() and (values >= 0).all()):
        raise _locate_error(path, text)
    window = values[start:end]
    if window.size == 0:
        raise TraceError(
            f"trace file {path} holds {values.size} seconds; the window "
            f"[start={start}, end={end}) selects none: pick start < {values.size}"
        )
    window = np.ascontiguousarray(window, dtype=np.float64)
    if damping != 1.0:
        window = np.floor(window / damping)
    return window


def load_env_workload(w: WorkloadConfig) -> tuple[np.ndarray, np.ndarray]:
    """The warm-up history and the playable trace of an env (see `WorkloadConfig.warmup_s`).

    Args:
        w: The workload config.

    Returns:
        ``(warm-up history, playable trace)``, per-second rates.

    Raises:
        ConfigError: A trace file not longer than its warm-up history.
        TraceError: An unreadable trace file.
    """
    split = w.warmup_s
    if w.source == "trace":
        assert w.trace_path is not None
        before = w.warmup_s if (w.start_s or 0) >= w.warmup_s else 0
        begin = (w.start_s or 0) - before
        trace = load_trace(w.trace_path, w.damping, begin or None, w.end_s)
        if w.scale != 1.0:
            trace = trace * w.scale  # fractions kept (the request simulator carries them)
        if len(trace) <= split:
            raise ConfigError(f"trace {w.trace_path} has {len(trace)} s, not more than "
                              f"its {w.warmup_s} s of warm-up history; use a longer trace "
                              "or lower workload.warmup_s")
    else:
        trace = synthetic_trace(w.pattern, w.warmup_s + w.window_s * w.synthetic_windows,
                                w.seed, w.scale)
    return trace[:split].copy(), trace[split:].copy()


def arrival_counts(rates_rps: np.ndarray, carry: float = 0.0) -> tuple[np.ndarray, float]:
    """Whole requests per second from per-second rates, carrying fractions forward.

    A fractional rate (a scaled trace) carries its fraction into the next second, so
    ``0.4`` req/s gives 2 requests in 5 s and a whole trace's count is kept; whole rates
    give exactly their count. The request simulator and the live backend both count
    arrivals with it.

    Args:
        rates_rps: Arrival rate of each second.
        carry: The fraction left over from the seconds before (0 at the start).

    Returns:
        ``(requests per second, the fraction left over)``.
    """
    totals = carry + np.cumsum(np.asarray(rates_rps, dtype=np.float64))
    if not totals.size:
        return np.zeros(0, dtype=np.int64), carry
    whole = np.floor(totals + 1e-9)
    counts = np.diff(np.concatenate([[0.0], whole])).astype(np.int64)
    return counts, float(totals[-1] - whole[-1])
