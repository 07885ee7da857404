"""The ``continuous:`` block of an LLM variant (``python -m energy.import_mlenergy
--continuous``; the format is in `envs.model.profile_format`).

* **points** (measured): every measured cap of the model on (GPU type, GPUs per replica),
  not only the stage's caps, as `energy.mlenergy.curves.llm_curve` reads them (two rows of
  one cap averaged), each quantity rounded to `POINT_DIGITS` significant digits;
* **output lengths** (measured): the ``output_length_distribution`` histograms of those
  configurations pooled (counts summed; bin edges at `POINT_DIGITS` significant digits).
  Every cap ran the same prompts (the benchmark's dataset), so each histogram is a draw of
  one distribution and the pool is its best estimate;
* **tables** (estimated): `envs.serving.load_table.load_table` on the curve of the
  *rounded* points (so the file reproduces them) with the pooled lengths, `REQUESTS`
  requests per load, seed `SEED`, one per cap of the stage, rounded to `TABLE_DIGITS`
  significant digits. Their ``saturated_rps`` is ``R(limit)`` over the mean of the lengths
  the simulation drew (iid draws: 0.5 to 0.7 % below the histogram's mean for the four
  chat models of llm_chat_h100_cb; measured), so that a table's load is the simulated
  one. ``power_w`` includes the replica's idle power (``P(0)`` = the idle power per GPU x
  GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energy.mlenergy.curves import llm_configurations, llm_curve
from energy.mlenergy.files import ModelFile
from envs.config.errors import ProfileError, TraceError
from envs.model.llm_curve import QUANTITIES, CapPoint, LlmCurve
from envs.model.profile_doc import continuous_entry, load_table_entry, significant
from envs.serving.load_table import load_table
from envs.workload.lengths import TokenLengths

POINT_DIGITS = 6
"""Significant digits of a stored point (assumed ample: the two measurements of one cap
differ by 9 % and 17 % in J/request for Qwen3-30B-A3B on 2 x H100, `energy.mlenergy.curves`)."""
TABLE_DIGITS = 4
"""Significant digits of a stored table value (assumed ample: a table's p99 agrees with a run
on other random numbers only within 10 %, tests/test_llm_serving.py)."""
REQUESTS = 400_000
"""Requests per load of a table: at 90 % load a p99 from 40,000 requests moves by 10-15 %
between seeds (measured: gemma-3-27b-it, cap 16); ten times more keeps the planner within
10 % of the request-level simulator (tests/test_one_latency_model.py)."""
SEED = 0
"""Seed of a table's arrivals and lengths (`load_table`'s default)."""


def pooled_histogram(f: ModelFile, configs: list[tuple[int, dict[str, Any]]]
                     ) -> tuple[list[float], list[float]]:
    """The output-length histograms of some configurations of one file, counts summed.

    Args:
        f: The file.
        configs: ``(index, configuration)`` pairs (`llm_configurations`).

    Returns:
        ``(bins, counts)``: the shared bin edges and the summed counts. Configurations
        without their own histogram are left out; if none has one, the file's.

    Raises:
        ProfileError: No histogram at all, histograms with different bin edges, or a
            malformed one (named).
    """
    hists = [(i, c["output_length_distribution"]) for i, c in configs
             if isinstance(c.get("output_length_distribution"), dict)]
    if not hists and isinstance(f.length_histogram, dict):
        hists = [(-1, f.length_histogram)]
    if not hists:
        raise ProfileError(f"{f.path}: no 'output_length_distribution' in the configurations "
                           "(nor in the file); the continuous block needs the output lengths")
    bins = hists[0][1].get("bins")
    counts: list[float] = [0] * (len(bins) - 1 if isinstance(bins, list) else 0)
    for i, h in hists:
        if h.get("bins") != bins or not isinstance(h.get("counts"), list) \
                or len(h["counts"]) != len(counts):
            raise ProfileError(f"{f.path}: configurations[{i}] has another output-length "
                               "histogram layout than the first; pooling needs the same bin "
                               "edges (re-bin the file or import without --continuous)")
        counts = [a + b for a, b in zip(counts, h["counts"], strict=True)]
    try:
        TokenLengths.from_histogram(bins, counts, f"{f.path}: pooled output lengths")
    except TraceError as err:
        raise ProfileError(str(err)) from None
    return [float(b) for b in bins], counts


@dataclass(frozen=True)
class TraceLengths:
    """Output lengths from a trace of real requests, as a histogram.

    Attributes:
        bins: Bin edges (tokens).
        counts: Requests per bin.
        description: What the trace is, for the points' source.
    """

    bins: list[float]
    counts: list[float]
    description: str


TRACE_BINS = 64
"""Bins of a trace's length histogram: log-spaced from 0.5 to the longest output plus 0.5
(whole token counts fall inside bins; assumed fine enough: the mean moves < 1 %)."""


def trace_histogram(path: Path, column: str = "GeneratedTokens") -> TraceLengths:
    """A trace's output lengths binned into `TRACE_BINS` log-spaced bins.

    Args:
        path: A CSV with one request a row (`envs.workload.lengths.TokenLengths.from_trace`).
        column: The output-token column.

    Returns:
        The histogram and its description.

    Raises:
        ProfileError: A missing file or column, or a bad value (one line from the reader).
    """
    try:
        trace = TokenLengths.from_trace(path, output_column=column)
    except TraceError as err:
        raise ProfileError(str(err)) from None
    out = trace.rows[:, 1]
    edges = np.geomspace(0.5, float(out.max()) + 0.5, TRACE_BINS + 1)
    counts, _ = np.histogram(out, bins=edges)
    bins = [significant(b, POINT_DIGITS) for b in edges]
    bins[0], bins[-1] = 0.5, float(out.max()) + 0.5
    return TraceLengths(bins, [float(c) for c in counts], (
        f"output lengths from {Path(path).name}, column {column!r}: {out.size} requests, "
        f"mean {out.mean():.1f} tokens (measured), binned into {TRACE_BINS} log-spaced bins; "
        "applied to every variant (assumed: the measured token rates and powers are "
        "ML.ENERGY's at its own prompt mix, and every model is taken to write the trace's "
        "lengths)"))


def rounded_points(curve: LlmCurve) -> tuple[CapPoint, ...]:
    """The curve's points with every quantity at `POINT_DIGITS` significant digits.

    Args:
        curve: From `llm_curve`.

    Returns:
        The points, in order.
    """
    return tuple(CapPoint(p.cap, *(significant(getattr(p, k), POINT_DIGITS)
                                   for k in ("concurrency",) + QUANTITIES))
                 for p in curve.points)


def continuous_block(f: ModelFile, gpu: str, num_gpus: int, idle_w_per_gpu: float,
                     caps: tuple[int, ...], release: str, source_prefix: str,
                     sources: dict[str, Any], trace: TraceLengths | None = None
                     ) -> dict[str, Any]:
    """One LLM variant's ``continuous:`` block, adding its two sources to ``sources``.

    Args:
        f: The variant's ML.ENERGY file.
        gpu: GPU model as the files name it.
        num_gpus: GPUs per replica.
        idle_w_per_gpu: Idle power of one GPU (the profile's ``device_idle_w``).
        caps: The stage's caps (one table each; each must be measured).
        release: Dataset version, written into the sources.
        source_prefix: Start of the two source ids (``mlenergy_<model>``).
        sources: The profile's sources, extended in place.
        trace: Output lengths from a trace (`trace_histogram`) instead of the file's.

    Returns:
        The block (`envs.model.profile_doc.continuous_entry`).

    Raises:
        ProfileError: No configuration on that GPU and count, a cap not measured, bad
            histograms, or an idle power above the smallest cap's measured power.
    """
    configs = llm_configurations(f, gpu, num_gpus)
    measured = llm_curve(f, gpu, num_gpus, idle_w_per_gpu)
    curve = LlmCurve(rounded_points(measured), measured.idle_w)
    missing = [c for c in caps if c not in curve.caps]
    if missing:
        raise ProfileError(f"{f.path}: {f.model_id} on {num_gpus} x {gpu} has no measured cap "
                           f"{missing}; measured: {list(curve.caps)}")
    if trace is None:
        bins, counts = pooled_histogram(f, configs)
        bins = [significant(b, POINT_DIGITS) for b in bins]
    else:
        bins, counts = trace.bins, trace.counts
    lengths = TokenLengths.from_histogram(bins, counts, f"{f.path.name} pooled")
    tables = [load_table_entry(cap, load_table(curve, cap, lengths, requests=REQUESTS,
                                               seed=SEED), TABLE_DIGITS) for cap in caps]
    points_id, tables_id = f"{source_prefix}_points", f"{source_prefix}_load_tables"
    why = _points_why(f, gpu, num_gpus, release, curve, configs, lengths.mean_output())
    if trace is not None:
        why = why.split("; output_lengths:")[0] + f"; output_lengths: {trace.description}"
    sources[points_id] = {"kind": "measured", "description": why}
    sources[tables_id] = {"kind": "estimated", "description": (
        f"simulated, not measured: envs.serving.load_table.load_table(curve, cap, "
        f"TokenLengths.from_histogram(bins, counts), requests={REQUESTS}, seed={SEED}) for "
        f"caps {list(caps)}, where curve = LlmCurve(points of {points_id}, idle "
        f"{idle_w_per_gpu:g} W x {num_gpus} GPU(s)) and (bins, counts) its output_lengths; "
        "the continuous-batching model (envs.serving.continuous_batching.serve_replica: "
        "running requests share R(n), the replica draws P(n), cap = running limit) under "
        "Poisson arrivals at 5 % .. 95 % of saturated_rps = R(running limit) / the mean of "
        f"the {REQUESTS} output lengths drawn (stratified: the histogram's mean), "
        "the first tenth of the requests as warm-up; p99_ms and mean_ms are time "
        "in the replica (queue included), power_w the replica's mean GPU power, idle "
        f"included; values at {TABLE_DIGITS} significant digits; written by python -m "
        "energy.import_mlenergy ... --continuous (energy.mlenergy.continuous)")}
    return continuous_entry(curve.points, bins, counts, tables, points_source=points_id,
                            tables_source=tables_id, idle_w=curve.idle_w)


def _points_why(f: ModelFile, gpu: str, num_gpus: int, release: str, curve: LlmCurve,
                configs: list[tuple[int, dict[str, Any]]], mean_output: float) -> str:
    """The description of the measured points' source."""
    rows: dict[int, int] = {}
    for _, c in configs:
        rows[int(c["max_num_seqs"])] = rows.get(int(c["max_num_seqs"]), 0) + 1
    twice = [cap for cap, n in rows.items() if n > 1]
    dips = "; ".join(f"tokens/s at cap {cap} {drop:.0%} below a smaller cap's, kept as "
                     "measured" for cap, _, drop in curve.dips())
    return (f"{release}, file {f.path.name}, task {f.task}, {num_gpus} x {gpu}: every "
            f"measured max_num_seqs {list(curve.caps)} as [cap, avg_batch_size, "
            "output_throughput_tokens_per_sec, avg_power_watts (all GPUs), median_itl_ms, "
            f"p99_itl_ms] at {POINT_DIGITS} significant digits"
            + (f"; caps {twice} measured twice, averaged" if twice else "")
            + (f"; {dips}" if dips else "")
            + f"; output_lengths: the output_length_distribution of the {len(configs)} "
            f"configurations on {num_gpus} x {gpu} pooled (counts summed: the same prompts at "
            f"every cap, so the same distribution in expectation), mean {mean_output:.1f} "
            "tokens at bin midpoints")
