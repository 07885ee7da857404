"""Energy totals from logs of external tools: ``perf stat -I`` and ``etrace2``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from energy.errors import EnergyLogError
from envs.meter_reading import EnergyReading

__all__ = [
    "PerfInterval",
    "parse_etrace2",
    "parse_perf_stat_intervals",
    "total_energy_from_perf",
]

# ---------------------------------------------------------------------------- perf stat

_TIME = re.compile(r"^\s*(\d+\.\d+)")
_AGGR = re.compile(r"^(?:S\d+(?:-D\d+)?|CPU\d+|N\d+)$")  # --per-socket/--per-die/-A/--per-node
_NOT_COUNTED = ("<not counted>", "<not supported>")
_EVENT = re.compile(r"energy-(pkg|ram)\b")
_HUMAN_COUNT = re.compile(r"^(?:<not counted>|<not supported>|\d[\d,]*(?:\.\d+)?)(?=\s|$)")


@dataclass(frozen=True)
class PerfInterval:
    """One ``perf stat -I`` interval.

    Attributes:
        timestamp_s: Seconds since perf started, at the end of the interval.
        interval_s: Length of the interval (the last one is usually shorter: perf prints the
            partial interval when the command exits or is interrupted).
        pkg_j: ``power/energy-pkg/`` joules summed over sockets; None when not counted or not
            supported (or absent) in this interval.
        ram_j: ``power/energy-ram/`` joules, same conventions.
    """

    timestamp_s: float
    interval_s: float
    pkg_j: float | None
    ram_j: float | None


def _perf_error(lineno: int, line: str, why: str) -> EnergyLogError:
    return EnergyLogError(f"perf stat log line {lineno}: {why}: {line.strip()!r}")


def _split_perf_row(line: str, lineno: int) -> tuple[float, str, str, str] | None:
    """Return ``(timestamp, count, unit, event)`` of a data row, None for a non-row."""
    m = _TIME.match(line)
    if m is None:
        return None
    stamp = float(m.group(1))
    rest = line[m.end() :]
    if rest[:1] and not rest[:1].isspace():  # -x<sep> CSV: the separator follows the time
        fields = [f.strip() for f in rest[1:].split(rest[0])]
        if fields and _AGGR.match(fields[0]):
            fields = fields[2:] if len(fields) > 1 and fields[1].isdigit() else fields[1:]
        if len(fields) < 3:
            raise _perf_error(lineno, line, "expected time,count,unit,event fields")
        return stamp, fields[0], fields[1], fields[2]
    tokens = rest.split()
    if tokens and _AGGR.match(tokens[0]):
        tokens = tokens[1:]
        if len(tokens) > 2 and tokens[0].isdigit() and _HUMAN_COUNT.match(" ".join(tokens[1:])):
            tokens = tokens[1:]  # the "number of CPUs" column of --per-socket
    body = " ".join(tokens)
    cm = _HUMAN_COUNT.match(body)
    if cm is None:
        raise _perf_error(lineno, line, "expected a count, '<not counted>' or '<not supported>'")
    after = body[cm.end() :].split()
    if not after:
        raise _perf_error(lineno, line, "the row has no event name")
    if after[0].lower() == "joules":
        if len(after) < 2:
            raise _perf_error(lineno, line, "the row has no event name")
        return stamp, cm.group(0), after[0], after[1]
    return stamp, cm.group(0), "", after[0]


def parse_perf_stat_intervals(text: str) -> list[PerfInterval]:
    """Parse ``perf stat -I <ms> -a -e power/energy-pkg/,power/energy-ram/`` output.

    Accepted: the human format (``     1.001234567    12.34 Joules power/energy-pkg/``) and the
    ``-x<sep>`` CSV format (``1.001234567,12.34,Joules,power/energy-pkg/,...``), with optional
    ``--per-socket``/``--per-die``/``-A`` aggregation columns (rows of one timestamp are
    summed); ``#`` header lines (perf repeats them every 25 intervals) and blank lines;
    ``<not counted>``/``<not supported>`` counts (None); other events, including
    ``energy-cores``/``energy-gpu``/``energy-psys`` (skipped: they overlap pkg); the closing
    ``Performance counter stats`` summary block of ``--summary`` (skipped: it repeats the
    intervals). A last line cut off mid-write (no trailing newline) is ignored. The partial
    last interval needs nothing special: interval lengths are timestamp differences.

    Args:
        text: The log.

    Returns:
        One row per timestamp, in order.

    Raises:
        EnergyLogError: A line is neither of the above, an energy row carries no ``Joules``
            unit, or timestamps go backwards; the message names the line.
    """
    lines = text.splitlines()
    rows: dict[float, dict[str, float | None]] = {}
    in_summary = False
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if in_summary or "Performance counter stats" in stripped:
            in_summary = True  # the --summary block at the end repeats the intervals' sum
            continue
        try:
            row = _split_perf_row(line, lineno)
        except EnergyLogError:
            if lineno == len(lines) and not text.endswith("\n"):
                break  # perf was still writing this line
            raise
        if row is None:
            raise _perf_error(lineno, line, "not a perf stat -I row (no leading timestamp)")
        stamp, count, unit, event = row
        if rows and stamp < next(reversed(rows)):
            raise _perf_error(lineno, line, "timestamp goes backwards (two logs concatenated?)")
        em = _EVENT.search(event)
        if em is None:
            continue
        domain = em.group(1)
        values = rows.setdefault(stamp, {"pkg": None, "ram": None})
        if count in _NOT_COUNTED:
            continue
        if unit.lower() != "joules":
            raise _perf_error(lineno, line, f"energy event with unit {unit!r}, expected Joules")
        try:
            joules = float(count.replace(",", ""))
        except ValueError:
            raise _perf_error(lineno, line, f"count {count!r} is not a number") from None
        values[domain] = (values[domain] or 0.0) + joules
    out = []
    previous = 0.0
    for stamp, values in rows.items():
        out.append(PerfInterval(stamp, stamp - previous, values["pkg"], values["ram"]))
        previous = stamp
    return out


def total_energy_from_perf(text: str, allow_gaps: bool = False) -> EnergyReading:
    """Sum a ``perf stat -I`` log into one reading (source ``"perf-stat-log"``).

    A domain that is never counted (e.g. ``energy-ram`` on client CPUs) is None in the reading.

    Args:
        text: The log, as for :func:`parse_perf_stat_intervals`.
        allow_gaps: Accept a domain that is counted in some intervals but not others (the
            total is then an undercount, which the reading's ``method`` states).

    Returns:
        The reading; ``seconds`` is the last timestamp.

    Raises:
        EnergyLogError: No energy rows, or gaps while ``allow_gaps`` is False.
    """
    intervals = parse_perf_stat_intervals(text)
    totals: dict[str, float | None] = {}
    notes = []
    for domain in ("pkg", "ram"):
        values = [getattr(iv, f"{domain}_j") for iv in intervals]
        counted = [v for v in values if v is not None]
        if not counted:
            totals[domain] = None
            continue
        missing = [iv.timestamp_s for iv, v in zip(intervals, values, strict=True) if v is None]
        if missing and not allow_gaps:
            raise EnergyLogError(
                f"perf stat log: power/energy-{domain}/ is missing in {len(missing)} of "
                f"{len(values)} intervals (at t={missing[:5]} s); the sum would undercount. "
                "Pass allow_gaps=True to accept that"
            )
        if missing:
            notes.append(f"energy-{domain} missing in {len(missing)} interval(s), undercounted")
        totals[domain] = sum(counted)
    if totals["pkg"] is None and totals["ram"] is None:
        raise EnergyLogError(
            "perf stat log holds no power/energy-pkg/ or power/energy-ram/ values; record it "
            "with `perf stat -I 1000 -a -e power/energy-pkg/,power/energy-ram/`"
        )
    method = f"sum of {len(intervals)} perf stat -I intervals (power/energy-pkg/, energy-ram/)"
    return EnergyReading(
        seconds=intervals[-1].timestamp_s,
        source="perf-stat-log",
        estimated=False,
        method="; ".join([method, *notes]),
        cpu_package_j=totals["pkg"],
        dram_j=totals["ram"],
    )


# ---------------------------------------------------------------------------- etrace2

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
