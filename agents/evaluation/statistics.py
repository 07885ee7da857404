"""Confidence intervals and paired tests of an evaluation, across training seeds and windows.

The replication unit is a (training seed, window) cell: a learned policy's metric is the
mean over the simulator seeds of that cell (the simulator seeds share common random
numbers, so they measure arrival and service noise, not training luck). Rules have no
training seed (one cell per window).

* Summary CIs: Student-t 95 % intervals across training seeds when a policy has two or
  more, else across simulator seeds (then they show simulator noise only); the summary
  says which in ``ci_over``.
* Paired tests against a reference (IPA): per (training seed, window) cell, the policy's
  cell mean minus the reference's mean on the same window and simulator seeds. The test
  is the exact two-sided Wilcoxon signed-rank test (`signed_rank_p`): it needs no
  normality (differences across windows are not normal) and is exact for few pairs, ties
  included. With n non-zero pairs the smallest p-value it can reach is 2 / 2^n (3 seeds
  x 4 windows: 0.00049; one rule on 4 windows: 0.125), reported as ``min_p``. The mean
  difference has a bootstrap 95 % CI over cells.
  Energy is compared relative to the reference (``energy_rel``: policy / reference - 1),
  because windows differ in scale.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from agents.evaluation.episode import Episode

__all__ = ["BOOTSTRAP_RESAMPLES", "PAIRED_METRICS", "cells", "mean_ci95", "paired_against",
           "paired_test"]

BOOTSTRAP_RESAMPLES = 10_000
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


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, float]:
    """Paired differences a - b: mean, bootstrap 95 % CI, exact Wilcoxon p, reachable p.

    Args:
        a: The policy's values, one per pair.
        b: The reference's values on the same pairs.
        seed: Bootstrap seed.

    Returns:
        ``mean_diff``, ``ci_low``, ``ci_high``, ``wilcoxon_p`` and ``min_p`` (2 / 2^n).
    """
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    resampled = rng.choice(diff, size=(BOOTSTRAP_RESAMPLES, diff.size)).mean(axis=1)
    lo, hi = np.percentile(resampled, [2.5, 97.5])
    nonzero = diff[~np.isclose(diff, 0.0)]
    return {"mean_diff": float(diff.mean()), "ci_low": float(lo), "ci_high": float(hi),
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


def _value(cell: dict[str, float], ref: dict[str, float], metric: str) -> tuple[float, float]:
    if metric == "energy_rel":
        return cell["energy_j"] / ref["energy_j"] - 1.0, 0.0
    return cell[metric], ref[metric]


def paired_against(episodes: Sequence[Episode], sla_ms: float, reference: str = "ipa"
                   ) -> list[dict[str, object]]:
    """Paired differences against ``reference`` over (training seed, window) cells.

    One row per (policy, metric) over all windows (``workload`` = ``all``), and one per
    window where the policy has two or more training seeds.

    Args:
        episodes: The evaluation's episodes.
        sla_ms: The end-to-end SLA (see `Episode.metrics`).
        reference: The policy compared against (its cell of the same window).

    Returns:
        One row per (policy, workload, metric of `PAIRED_METRICS`) with ``n_pairs``,
        ``n_train_seeds`` and `paired_test`'s fields; groups of fewer than two pairs are
        left out.
    """
    table = cells(episodes, sla_ms)
    refs = {w: m for (p, w, _), m in table.items() if p == reference}
    rows: list[dict[str, object]] = []
    for policy in sorted({p for p, _, _ in table} - {reference}):
        mine = {(w, s): m for (p, w, s), m in table.items() if p == policy and w in refs}
        groups = {"all": sorted(mine)}
        for window in sorted({w for w, _ in mine}):
            keys = [k for k in sorted(mine) if k[0] == window]
            if len(keys) >= 2:
                groups[window] = keys
        for workload, keys in groups.items():
            if len(keys) < 2:
                continue
            for metric in PAIRED_METRICS:
                pairs = [_value(mine[k], refs[k[0]], metric) for k in keys]
                result = paired_test([a for a, _ in pairs], [b for _, b in pairs])
                rows.append({"policy": policy, "workload": workload, "metric": metric,
                             "n_pairs": len(keys),
                             "n_train_seeds": len({s for _, s in keys}), **result})
    return rows
