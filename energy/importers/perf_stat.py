"""Energy totals from ``perf stat -I`` logs (RAPL package and DRAM counters)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from energy.errors import EnergyLogError
from envs.metering.reading import EnergyReading

__all__ = [
    "PerfInterval",
    "parse_perf_stat_intervals",
    "total_energy_from_perf",
]

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
