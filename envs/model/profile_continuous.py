"""Check a variant's ``continuous:`` block of a profile and turn it into a
`envs.model.continuous.ContinuousServing` (the format is in `envs.model.profile_format`).

Each problem is one `ProfileError` line naming the file, the stage/variant, the field and
the fix. The loader stores the block as it is: the tables were simulated by the importer
(`energy.mlenergy.continuous`) at the block's ``idle_w``, and nothing is rebuilt here; with
``load_pipeline(..., idle_power_scale=s)`` or an edited pool, the stage's dynamic power stays
what it was above ``idle_w`` (`envs.model.continuous_perf.replica_second`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from envs.config.errors import ProfileError
from envs.config.suggest import did_you_mean
from envs.model.continuous import ContinuousServing, histogram_problem
from envs.model.llm_curve import CapPoint, LlmCurve
from envs.model.load_table import LoadTable
from envs.model.profile_data import Source
from envs.model.profile_format import ContinuousFile, LoadTableFile

REGENERATE = "regenerate it with python -m energy.import_mlenergy ... --continuous"


def continuous_serving(where: str, knob: str, batch_sizes: Sequence[int],
                       spec: ContinuousFile, sources: Mapping[str, Source]
                       ) -> ContinuousServing:
    """Check one variant's ``continuous:`` block and build its record.

    Args:
        where: ``"<file>: <stage>/<variant>"``, the start of every message.
        knob: The stage's knob (the block needs ``cap``).
        batch_sizes: The caps policies may choose in the stage (each needs a measured point
            and a table).
        spec: The block as read.
        sources: The profile's sources.

    Returns:
        The record.

    Raises:
        ProfileError: The first problem found (one line, with the fix).
    """
    if knob != "cap":
        raise ProfileError(f"{where}: 'continuous:' describes an LLM served by continuous "
                           f"batching, but the stage's knob is {knob!r}; set the stage's "
                           "'knob: cap' (its batch_sizes are concurrency caps) or remove the "
                           "block")
    for key in ("points_source", "tables_source"):
        ref = getattr(spec, key)
        if ref not in sources:
            raise ProfileError(f"{where}: continuous.{key} {ref!r} is not in sources "
                               f"{sorted(sources)}{did_you_mean(ref, sources)}; add it to "
                               "'sources:' or name an existing one")
    if not (isinstance(spec.idle_w, int | float) and math.isfinite(spec.idle_w)
            and spec.idle_w >= 0):
        raise ProfileError(f"{where}: continuous.idle_w must be a finite power >= 0 W (the "
                           f"replica's idle power its tables were simulated with), got "
                           f"{spec.idle_w!r}; {REGENERATE}")
    points = _points(where, spec, float(spec.idle_w))
    if spec.max_running is not None and not (isinstance(spec.max_running, int)
                                             and spec.max_running >= 1):
        raise ProfileError(f"{where}: continuous.max_running must be an integer >= 1 (the "
                           f"most requests a replica runs at once), got {spec.max_running!r}")
    measured = {p.cap for p in points}
    tables = _tables(where, spec.tables, measured)
    for cap in batch_sizes:
        if cap not in measured:
            raise ProfileError(f"{where}: continuous.points has no measured cap {cap} of the "
                               f"stage's batch_sizes {list(batch_sizes)} (measured caps: "
                               f"{sorted(measured)}); remove the cap from batch_sizes or "
                               f"{REGENERATE}")
        if cap not in tables:
            raise ProfileError(f"{where}: continuous.tables has no table for cap {cap} of the "
                               f"stage's batch_sizes {list(batch_sizes)} (tables: "
                               f"{sorted(tables)}); {REGENERATE}")
    hist = spec.output_lengths
    problem = histogram_problem(hist.bins, hist.counts)
    if problem:
        raise ProfileError(f"{where}: continuous.output_lengths: {problem}; give bin edges "
                           "(one more than counts, increasing, >= 0) and requests per bin "
                           "(>= 0, positive total)")
    return ContinuousServing(points, tuple(hist.bins), tuple(hist.counts),
                             MappingProxyType(tables), spec.points_source, spec.tables_source,
                             float(spec.idle_w), spec.max_running)


def _points(where: str, spec: ContinuousFile, idle_w: float) -> tuple[CapPoint, ...]:
    """The measured points, checked as a curve (distinct increasing caps, concurrency
    increasing with the cap, idle power below the smallest cap's)."""
    if not spec.points:
        raise ProfileError(f"{where}: continuous.points is empty; list one measured point "
                           f"per cap or {REGENERATE}")
    try:
        points = tuple(CapPoint(*p) for p in spec.points)
        LlmCurve(points, idle_w)
    except ProfileError as err:
        raise ProfileError(f"{where}: continuous.points: {err}") from None
    return points


def _tables(where: str, specs: Sequence[LoadTableFile], measured: set[int]
            ) -> dict[int, LoadTable]:
    """Cap -> load table, each checked."""
    tables: dict[int, LoadTable] = {}
    for t in specs:
        field = f"continuous.tables (cap {t.cap})"
        if t.cap in tables:
            raise ProfileError(f"{where}: {field} appears twice; keep one table per cap")
        if t.cap not in measured:
            raise ProfileError(f"{where}: {field} has no measured point in continuous.points "
                               f"(caps {sorted(measured)}); a table is simulated from its "
                               f"cap's point: remove the table or {REGENERATE}")
        columns = {"loads": t.loads, "p99_ms": t.p99_ms, "mean_ms": t.mean_ms,
                   "power_w": t.power_w}
        sizes = {k: len(v) for k, v in columns.items()}
        if len(set(sizes.values())) != 1 or sizes["loads"] < 2:
            raise ProfileError(f"{where}: {field}: loads, p99_ms, mean_ms and power_w need "
                               f"the same length, at least 2 (got {sizes}); {REGENERATE}")
        values = {"saturated_rps": (t.saturated_rps,), **columns}
        for key, vals in values.items():
            if not all(math.isfinite(v) and v > 0 for v in vals):
                raise ProfileError(f"{where}: {field}.{key} must be finite numbers > 0, got "
                                   f"{list(vals)}; {REGENERATE}")
        loads = np.asarray(t.loads, dtype=float)
        if np.any(np.diff(loads) <= 0) or loads[-1] >= 1:
            raise ProfileError(f"{where}: {field}.loads {list(t.loads)} must increase within "
                               f"(0, 1) (fractions of the saturated rate); {REGENERATE}")
        tables[t.cap] = LoadTable(t.saturated_rps, loads, np.asarray(t.p99_ms, dtype=float),
                                  np.asarray(t.mean_ms, dtype=float),
                                  np.asarray(t.power_w, dtype=float))
    return tables
