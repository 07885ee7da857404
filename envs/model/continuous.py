"""What a profile says about a variant served by continuous batching (an LLM stage with
``knob: cap``): the measured points of its curve, its output-length histogram and one load
table per cap the stage offers.

A plain record; the profile loader (`envs.model.profile_continuous`) checks it, the
importer (`energy.mlenergy.continuous`) writes it. Provenance, as the profile's sources
say: the points are **measured** (ML.ENERGY, one saturated run per cap); the tables are
**estimated** (simulated on the continuous-batching model from those points,
`envs.serving.load_table.load_table`); the histogram is **measured** (the output lengths
of the benchmark's requests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from envs.config.errors import ProfileError
from envs.model.llm_curve import CapPoint, LlmCurve
from envs.model.load_table import LoadTable


def histogram_problem(bins: Sequence[float], counts: Sequence[float]) -> str | None:
    """What is wrong with an output-length histogram, or None when it is valid.

    Valid: ``len(bins) == len(counts) + 1``, the bins finite, increasing and >= 0, the
    counts finite and >= 0 with a positive total.

    Args:
        bins: Bin edges (tokens).
        counts: Requests per bin.

    Returns:
        The problem in a few words, or None.
    """
    edges = np.asarray(bins, dtype=float)
    weights = np.asarray(counts, dtype=float)
    if edges.ndim != 1 or weights.ndim != 1 or edges.size != weights.size + 1 \
            or not weights.size:
        return f"{edges.size} bin edges for {weights.size} counts (need one edge more)"
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0) or edges[0] < 0:
        return "bin edges must be finite, >= 0 and increasing"
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        return "counts must be finite and >= 0 with a positive total"
    return None


def histogram_mean(bins: Sequence[float], counts: Sequence[float]) -> float:
    """Mean of a histogram with every bin at its midpoint.

    Args:
        bins: Bin edges, one more than counts (`histogram_problem` is None).
        counts: Weight of each bin.

    Returns:
        The weighted mean of the bin midpoints.
    """
    edges = np.asarray(bins, dtype=float)
    weights = np.asarray(counts, dtype=float)
    return float(np.sum(weights * (edges[:-1] + edges[1:]) / 2) / weights.sum())


@dataclass(frozen=True, eq=False)
class ContinuousServing:
    """One variant's continuous-batching description, as its profile gives it.

    Compared by identity (``eq=False``): the tables hold numpy arrays.

    Attributes:
        points: Measured points, one per cap, sorted by cap (`merge_duplicate_caps`).
        output_bins: Bin edges of the output-length histogram (tokens).
        output_counts: Requests per bin.
        tables: Cap -> its load table (p99, mean latency and power, idle included, by
            load fraction); one per cap the stage offers.
        points_source: Source id (in the profile's ``sources``) of the points.
        tables_source: Source id of the tables.
        idle_w: The replica's idle power the curve's ``P(0)`` and the tables were built
            with, watts; its dynamic power is measured above it whatever idle power the
            pool is given (`envs.model.profile_format`).
        max_running: The replica's admission limit under a per-token latency target
            (`envs.model.llm_curve.LlmCurve.max_running`); None: none.
    """

    points: tuple[CapPoint, ...]
    output_bins: tuple[float, ...]
    output_counts: tuple[float, ...]
    tables: Mapping[int, LoadTable]
    points_source: str
    tables_source: str
    idle_w: float
    max_running: int | None = None

    def curve(self) -> LlmCurve:
        """The replica's curve R(n), P(n), ITL(n) from the measured points, ``P(0) =
        idle_w``.

        Returns:
            The curve (`envs.model.llm_curve.LlmCurve`).
        """
        return LlmCurve(self.points, self.idle_w, self.max_running)

    def table(self, cap: int) -> LoadTable:
        """The load table of one cap.

        Args:
            cap: A concurrency cap the stage offers.

        Returns:
            Its table.

        Raises:
            ProfileError: No table for this cap (names the caps that have one).
        """
        if cap not in self.tables:
            raise ProfileError(f"no load table for cap {cap}; caps with a table: "
                               f"{sorted(self.tables)}; choose one of them or regenerate the "
                               "profile with that cap (python -m energy.import_mlenergy "
                               "--continuous)")
        return self.tables[cap]

    @property
    def mean_output_tokens(self) -> float:
        """Mean output length of the histogram (bins at their midpoints), tokens."""
        return histogram_mean(self.output_bins, self.output_counts)
