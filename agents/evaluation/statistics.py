"""Confidence intervals and paired tests of an evaluation, with the training run as the
unit of replication.

A learned policy's metric on a window is the mean over the simulator seeds of its
(training seed, window) cell (the simulator seeds share common random numbers, so they
measure arrival and service noise, not training luck). Rules have no training seed (one
cell per window).

* Summary CIs: Student-t 95 % intervals across training seeds when a policy has two or
  more, else across simulator seeds (then they show simulator noise only); the summary
  says which in ``ci_over``.
* Paired differences against a reference (IPA), on the same windows and simulator seeds:
  per cell, the policy's mean minus the reference's (energy relative: ``energy_rel`` =
  policy / reference - 1, because windows differ in scale). The unit is the **training
  seed**: pooled over windows, a seed's value is the mean of its cells' differences
  (windows are nested in seeds; they share the seed's training, and IPA's four windows
  share trace seconds), so 3 seeds are 3 units, not 12. Per window, each seed is a unit.
  A policy with one training seed (every rule) has the windows as its units, marked
  ``window``. The CI is Student-t over the units; the test is the exact two-sided
  Wilcoxon signed-rank test over them (`signed_rank_p`), whose smallest reachable
  p-value, 2 / 2^n, is reported as ``min_p`` (3 seeds: 0.25).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from agents.evaluation.episode import Episode

__all__ = ["PAIRED_METRICS", "cells", "mean_ci95", "paired_against", "paired_rows",
           "paired_test"]

PAIRED_METRICS = ("energy_rel", "sla_violation_rate", "accuracy_requests", "accuracy")


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % Student-t confidence interval (nan if n < 2).

    Args:
        values: The replication units' values.

    Returns:
        The mean and the CI's half-width.
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float(x.mean()), math.nan
    half = scipy_stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Paired differences a - b over units: mean, Student-t 95 % CI, exact Wilcoxon p and
    the smallest p the units can reach.

    Args:
        a: The policy's values, one per unit.
        b: The reference's values on the same units.

    Returns:
        ``mean_diff``, ``ci_low``, ``ci_high`` (nan with one unit), ``wilcoxon_p`` and
        ``min_p`` (2 / 2^n over the n non-zero differences).
    """
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean, half = mean_ci95(diff)
    nonzero = diff[~np.isclose(diff, 0.0)]
    return {"mean_diff": mean, "ci_low": mean - half, "ci_high": mean + half,
            "wilcoxon_p": signed_rank_p(nonzero),
            "min_p": min(1.0, 2.0 / 2.0 ** nonzero.size)}


EXACT_MAX_PAIRS = 16
"""Up to this many non-zero pairs the signed-rank p-value enumerates every sign pattern."""


def signed_rank_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of non-zero differences (zeros dropped).

    Exact (every one of the 2^n sign patterns of the average ranks, so ties are handled)
    up to `EXACT_MAX_PAIRS` pairs, scipy's normal approximation beyond. The smallest value
    it can return is 2 / 2^n.

    Args:
        diff: The non-zero paired differences.

    Returns:
        The two-sided p-value (1.0 for no differences).
    """
    n = diff.size
    if n == 0:
        return 1.0
    if n > EXACT_MAX_PAIRS:
        return float(scipy_stats.wilcoxon(diff, method="approx").pvalue)
    ranks = scipy_stats.rankdata(np.abs(diff))
    observed = ranks[diff > 0].sum()
    signs = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
    w_plus = signs @ ranks
    low = np.mean(w_plus <= observed + 1e-9)
    high = np.mean(w_plus >= observed - 1e-9)
    return float(min(1.0, 2.0 * min(low, high)))


def cells(episodes: Sequence[Episode], sla_ms: float
          ) -> dict[tuple[str, str, int], dict[str, float]]:
    """(policy, window, training seed) -> each metric's mean over simulator seeds.

    Args:
        episodes: The evaluation's episodes.
        sla_ms: The end-to-end SLA (see `Episode.metrics`).

    Returns:
        ``{(policy, window, training seed): {metric: mean}}``.
    """
    groups: dict[tuple[str, str, int], list[dict[str, float]]] = defaultdict(list)
    for ep in episodes:
        groups[(ep.policy, ep.window, ep.train_seed)].append(ep.metrics(sla_ms))
    return {key: {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
            for key, ms in groups.items()}


def paired_against(episodes: Sequence[Episode], sla_ms: float, reference: str = "ipa"
                   ) -> list[dict[str, object]]:
    """Paired differences against ``reference``, the training seed as the unit
    (`paired_rows` on the evaluation's cells).

    Args:
        episodes: The evaluation's episodes.
        sla_ms: The end-to-end SLA (see `Episode.metrics`).
        reference: The policy compared against (its cell of the same window).
    """
    return paired_rows(cells(episodes, sla_ms), reference)


def paired_rows(table: dict[tuple[str, str, int], dict[str, float]], reference: str = "ipa"
                ) -> list[dict[str, object]]:
    """Paired differences of each policy's cells against ``reference``'s.

    One row per (policy, metric) pooled over the windows (``workload`` = ``all``; a unit is
    a training seed, its value the mean over windows of its cells' differences; a policy
    with one training seed has the windows as units), and one per window where the policy
    has two or more training seeds (each seed a unit).

    Args:
        table: `cells`: ``{(policy, window, training seed): {metric: mean}}``.
        reference: The policy compared against (its cell of the same window).

    Returns:
        One row per (policy, workload, metric of `PAIRED_METRICS`) with ``unit``,
        ``n_units``, ``n_windows`` and `paired_test`'s fields; groups of fewer than two
        units are left out.
    """
    refs = {w: m for (p, w, _), m in table.items() if p == reference}
    rows: list[dict[str, object]] = []
    for policy in sorted({p for p, _, _ in table} - {reference}):
        mine = {(w, s): m for (p, w, s), m in table.items() if p == policy and w in refs}
        seeds = sorted({s for _, s in mine})
        windows = sorted({w for w, _ in mine})
        for metric in PAIRED_METRICS:
            diffs = {k: _difference(mine[k], refs[k[0]], metric) for k in mine}
            groups: dict[str, tuple[str, list[float]]] = {}
            if len(seeds) >= 2:
                groups["all"] = ("training seed", [
                    float(np.mean([d for (_, s), d in diffs.items() if s == seed]))
                    for seed in seeds])
                for window in windows:
                    groups[window] = ("training seed", [d for (w, _), d in sorted(diffs.items())
                                                        if w == window])
            else:
                groups["all"] = ("window", [diffs[k] for k in sorted(diffs)])
            for workload, (unit, values) in groups.items():
                if len(values) < 2:
                    continue
                result = paired_test(values, [0.0] * len(values))
                rows.append({"policy": policy, "workload": workload, "metric": metric,
                             "unit": unit, "n_units": len(values),
                             "n_windows": len(windows) if workload == "all" else 1, **result})
    return rows


def _difference(cell: dict[str, float], ref: dict[str, float], metric: str) -> float:
    if metric == "energy_rel":
        return cell["energy_j"] / ref["energy_j"] - 1.0
    return cell[metric] - ref[metric]
