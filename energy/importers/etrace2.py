"""Energy totals from ``etrace2`` logs (per-socket package and DRAM energy per interval)."""

from __future__ import annotations

import re

from energy.errors import EnergyLogError
from envs.metering.reading import EnergyReading

__all__ = ["parse_etrace2"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds)?(?=[\s,:;]|$)[\s,:;]*")
_PAIR = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z_]*?)(?P<idx>\d*)\s*[=:]\s*"
    r"(?P<val>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(?P<unit>[mu\u00b5]?J(?:oules)?|W)?(?![\w.])"
    r"[\s,;]*"
)
_SUMMARY_KEY = re.compile(r"^(?:ENERGY|POWER|ELAPSED|TIME|DURATION)\w*$")
_DOMAIN_KEYS = {
    "pkg": "pkg",
    "package": "pkg",
    "socket": "pkg",
    "cpu": "pkg",
    "dram": "dram",
    "mem": "dram",
}
_J_SCALE = {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "\u00b5J": 1e-6, "": 1.0}


def _etrace_error(lineno: int, line: str, why: str) -> EnergyLogError:
    return EnergyLogError(
        f"etrace2 log line {lineno}: {why}: {line.strip()!r}; expected '# comment', "
        "'KEY=value' summaries (ENERGY=, ELAPSED=, ...) or interval lines like "
        "'0.5 sec pkg0=12.3 J pkg1=11.0 J dram0=2.1 J'"
    )


def _parse_pairs(body: str, lineno: int, line: str) -> list[re.Match[str]]:
    pairs, pos = [], 0
    while pos < len(body):
        m = _PAIR.match(body, pos)
        if m is None:
            raise _etrace_error(lineno, line, f"cannot read {body[pos:]!r}")
        pairs.append(m)
        pos = m.end()
    return pairs


def parse_etrace2(text: str) -> EnergyReading:
    """Sum an etrace2 log into one reading (source ``"etrace2-log"``).

    etrace2 reports energy per interval for each CPU socket and DRAM domain and ends with an
    ``ENERGY=`` line that covers only the last interval, so the total here is the sum of the
    per-interval domain values and ``ENERGY=`` is never used as the total. Accepted lines:

    * blank lines and lines starting with ``#`` (comments/headers, ignored);
    * summary lines made only of upper-case ``KEY=value`` pairs whose key starts with
      ``ENERGY``, ``POWER``, ``ELAPSED``, ``TIME`` or ``DURATION`` (ignored, except
      ``ELAPSED=`` which gives ``seconds`` when intervals carry no duration);
    * interval lines: an optional duration (``0.5``, ``0.5 s``, ``0.5 sec``) followed by
      ``name<N>=value[unit]`` pairs separated by spaces or commas, e.g.
      ``0.5 sec pkg0=12.3 J pkg1=11.0 J dram0=2.1 J dram1=2.0 J``. Names ``pkg``,
      ``package``, ``socket``, ``cpu`` mean the CPU package, ``dram`` and ``mem`` mean DRAM
      (case-insensitive, ``=`` or ``:``). Units ``J`` (default), ``mJ``, ``uJ``; ``W`` is
      converted with the line's duration. Summary keys on an interval line are ignored.

    Args:
        text: The log.

    Returns:
        The reading; ``seconds`` is the sum of interval durations, else ``ELAPSED=``.

    Raises:
        EnergyLogError: A line matches none of the above (the message gives its number), a
            name repeats on one line, there are no interval lines, or no duration is known.
    """
    totals: dict[str, float] = {}
    components: dict[str, float] = {}
    seconds = 0.0
    intervals = 0
    timed_intervals = 0
    elapsed: float | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        dm = _DURATION.match(stripped)
        duration = float(dm.group(1)) if dm else None
        body = stripped[dm.end() :] if dm else stripped
        if not body:
            raise _etrace_error(lineno, line, "a duration with no values")
        pairs = _parse_pairs(body, lineno, line)
        domain_pairs = []
        for m in pairs:
            key = m.group("key") + m.group("idx")
            if _SUMMARY_KEY.match(key):
                if duration is None and key == "ELAPSED":
                    elapsed = float(m.group("val"))
                continue
            if m.group("key").lower() not in _DOMAIN_KEYS:
                raise _etrace_error(lineno, line, f"unknown name {key!r}")
            domain_pairs.append(m)
        if not domain_pairs:
            if duration is not None:
                raise _etrace_error(lineno, line, "an interval line with no pkg/dram values")
            continue  # summary line
        intervals += 1
        if duration is not None:
            seconds += duration
            timed_intervals += 1
        seen: set[str] = set()
        for m in domain_pairs:
            domain = _DOMAIN_KEYS[m.group("key").lower()]
            label = f"{domain}{m.group('idx') or '0'}"
            if label in seen:
                raise _etrace_error(lineno, line, f"{label} appears twice")
            seen.add(label)
            value, unit = float(m.group("val")), (m.group("unit") or "").removesuffix("oules")
            if value < 0:
                raise _etrace_error(lineno, line, f"negative energy for {label}")
            if unit == "W":
                if duration is None:
                    raise _etrace_error(lineno, line, "a power value (W) needs a duration")
                joules = value * duration
            else:
                joules = value * _J_SCALE[unit]
            totals[domain] = totals.get(domain, 0.0) + joules
            components[label] = components.get(label, 0.0) + joules
    if intervals == 0:
        raise EnergyLogError(
            "etrace2 log holds no interval lines with pkg/dram values (a lone ENERGY= line "
            "covers only the last interval and cannot be used as the total)"
        )
    if timed_intervals == intervals:
        total_seconds = seconds
    elif timed_intervals == 0 and elapsed is not None:
        total_seconds = elapsed
    else:
        raise EnergyLogError(
            f"etrace2 log: {intervals - timed_intervals} of {intervals} interval lines have no "
            "duration and no usable ELAPSED= line gives the total; prefix each interval line "
            "with its length in seconds"
        )
    return EnergyReading(
        seconds=total_seconds,
        source="etrace2-log",
        estimated=False,
        method=(
            f"sum of {intervals} etrace2 interval lines (per-socket package + DRAM); the final "
            "ENERGY= line covers only the last interval and is not used"
        ),
        cpu_package_j=totals.get("pkg"),
        dram_j=totals.get("dram"),
        components=components,
    )
