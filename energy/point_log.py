"""The profiler's resumable record of measured points: ``<out>.partial.jsonl``.

The first line is ``{"meta": {...}}`` (the settings of the run); every later line is one
`energy.measure.Point`, appended and synced to disk as soon as it is measured, so a
killed run resumes where it stopped. A line cut short by a kill is measured again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from energy.measure import Point
from envs.config.errors import ConfigError


def partial_path(out: Path) -> Path:
    """The point log of the profile ``out``.

    Args:
        out: The profile YAML the run writes.

    Returns:
        ``out`` with the suffix ``.partial.jsonl``.
    """
    return out.with_suffix(".partial.jsonl")


def read_points(path: Path, meta: dict[str, Any]) -> dict[str, Point]:
    """The points an earlier run with the same settings logged at ``path``.

    Args:
        path: The point log.
        meta: This run's settings; they must equal the logged ones.

    Returns:
        Point key -> point; empty when the log is absent or empty.

    Raises:
        ConfigError: The log was written with other settings.
    """
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    if not lines:
        return {}
    saved_meta = json.loads(lines[0]).get("meta")
    if saved_meta != meta:
        raise ConfigError(
            f"{path} was measured with different settings ({saved_meta}) than this run "
            f"({meta}); delete it to start over, or rerun with the same settings"
        )
    points = {}
    for line in lines[1:]:
        if line.strip():
            try:
                point = Point(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut short by a kill; that point is measured again
            points[point.key] = point
    return points


def start_log(path: Path, meta: dict[str, Any]) -> dict[str, Point]:
    """Open the point log for appending: read what is there, or write its header.

    Args:
        path: The point log (its folder is created).
        meta: This run's settings.

    Returns:
        The points already measured (see `read_points`).

    Raises:
        ConfigError: The log was written with other settings.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    points = read_points(path, meta)
    if not path.exists() or not path.read_text().strip():
        path.write_text(json.dumps({"meta": meta}) + "\n")
    text = path.read_text()
    if text and not text.endswith("\n"):  # a line cut short by a kill: start a fresh one
        with path.open("a") as log:
            log.write("\n")
    return points


def append_point(log: TextIO, point: Point) -> None:
    """Append ``point`` to an open log and sync it to disk.

    Args:
        log: The point log, opened for appending.
        point: The point just measured.
    """
    log.write(json.dumps(point.__dict__) + "\n")
    log.flush()
    os.fsync(log.fileno())
