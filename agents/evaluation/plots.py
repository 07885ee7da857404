"""The plots of an evaluation report: one colour and marker per policy, in every plot.

PPO, the residual agent and IPA are drawn on top (highest z-order); names go in a legend,
never as labels on points, so nothing overlaps. Time series show the main policies only
(`MAIN_POLICIES`); every policy stays in ``steps.csv``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from agents.evaluation.episode import Episode  # noqa: E402

__all__ = ["MAIN_POLICIES", "STYLE", "plot_latency_cdf", "plot_pareto", "plot_timeseries"]

STYLE: dict[str, tuple[str, str]] = {
    "ppo": ("#d62728", "*"),
    "residual": ("#ff1493", "d"),
    "ipa": ("#1f77b4", "o"),
    "ipa_tuned": ("#17becf", "D"),
    "ipa_energy": ("#2ca02c", "s"),
    "ipa_energy_matched": ("#006400", "s"),
    "ipa_oracle": ("#9467bd", "P"),
    "fa2_low": ("#8c564b", "v"),
    "fa2_high": ("#e377c2", "^"),
    "rim": ("#7f7f7f", "X"),
    "hpa": ("#bcbd22", "<"),
    "ray_serve": ("#ff7f0e", ">"),
    "static_low": ("#393b79", "h"),
    "static_high": ("#637939", "H"),
    "random": ("#000000", "p"),
}
"""Colour and marker of each policy (distinct pairs; the same in every plot)."""

ON_TOP = ("ppo", "residual", "ipa")
MAIN_POLICIES = ("ppo", "residual", "ipa", "ipa_tuned", "ipa_energy")


def style(policy: str) -> dict[str, object]:
    """Matplotlib keyword arguments of a policy (colour, marker, z-order).

    Args:
        policy: A policy name (one not in `STYLE` is drawn grey).

    Returns:
        ``color``, ``marker`` and ``zorder`` (IPA and PPO on top).
    """
    colour, marker = STYLE.get(policy, ("#aaaaaa", "o"))
    return {"color": colour, "marker": marker, "zorder": 5 if policy in ON_TOP else 2}


def _legend(fig: plt.Figure, policies: Sequence[str], extra: Sequence[Line2D] = ()) -> None:
    handles = [Line2D([], [], linestyle="none", markersize=8, label=p,
                      **{k: v for k, v in style(p).items() if k != "zorder"})
               for p in policies]
    fig.legend(handles=[*handles, *extra], loc="lower center", ncol=min(7, len(handles) + 1),
               fontsize=8, frameon=False)


def _order(policies: set[str]) -> list[str]:
    known = [p for p in STYLE if p in policies]
    return known + sorted(policies - set(known))


def plot_pareto(rows: Sequence[dict[str, object]], path: Path, x: str = "energy_j",
                y: str = "accuracy_requests", xlabel: str = "energy (J)",
                ylabel: str = "accuracy, request-weighted (sum over stages)") -> None:
    """Per window, ``y`` against ``x`` with 95 % CIs; hollow: more SLA violations than IPA.

    Args:
        rows: Summary rows (one per policy and window) holding ``workload``, ``policy``,
            ``sla_violation_rate``, ``x``, ``y`` and their ``_ci95`` columns.
        path: The image file to write.
        x: The column on the (log) x axis.
        y: The column on the y axis.
        xlabel: The x axis label (" (log)" is appended).
        ylabel: The y axis label.
    """
    windows = sorted({str(r["workload"]) for r in rows})
    fig, axes = plt.subplots(1, len(windows), figsize=(4.4 * len(windows), 4.2), squeeze=False)
    for ax, window in zip(axes[0], windows, strict=True):
        here = [r for r in rows if r["workload"] == window]
        ipa = next((float(r["sla_violation_rate"]) for r in here if r["policy"] == "ipa"),
                   None)
        for r in here:
            kw = style(str(r["policy"]))
            misses = ipa is not None and float(r["sla_violation_rate"]) > ipa
            xerr, yerr = float(r[f"{x}_ci95"]), float(r[f"{y}_ci95"])
            ax.errorbar(float(r[x]), float(r[y]), xerr=None if np.isnan(xerr) else xerr,
                        yerr=None if np.isnan(yerr) else yerr, linestyle="none",
                        ecolor=kw["color"], elinewidth=0.8, capsize=2, markersize=9,
                        marker=kw["marker"], color=kw["color"], zorder=kw["zorder"],
                        markerfacecolor="none" if misses else kw["color"])
        ax.set_title(window)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap
        ax.set_xlabel(f"{xlabel} (log)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    hollow = Line2D([], [], linestyle="none", marker="o", markerfacecolor="none",
                    color="black", label="hollow: SLA violations above IPA's")
    _legend(fig, _order({str(r["policy"]) for r in rows}), [hollow])
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_timeseries(episodes: Sequence[Episode], window: str, seed: int, path: Path,
                    interval_s: int) -> None:
    """Load, forecast, power (W) and accuracy over time of the main policies (one
    simulator seed, the first training seed).

    Args:
        episodes: The evaluation's episodes (those of ``window`` and ``seed`` are drawn;
            all their policies if none of the main ones is there).
        window: The window to draw.
        seed: The simulator seed to draw.
        path: The image file to write.
        interval_s: The env's interval length, to turn interval energy into power.
    """
    eps = {}
    for ep in episodes:
        if ep.window == window and ep.seed == seed and ep.policy in MAIN_POLICIES:
            eps.setdefault(ep.policy, ep)
    if not eps:
        eps = {ep.policy: ep for ep in episodes if ep.window == window and ep.seed == seed}
    first = next(iter(eps.values()))
    t = [s.t_s for s in first.steps]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(t, [s.rate_rps for s in first.steps], color="black", label="load")
    axes[0].plot(t, [s.forecast_rps for s in first.steps], color="grey", linestyle="--",
                 label="forecast (env predictor)")
    axes[0].set_ylabel("req/s")
    axes[0].legend(fontsize=8, loc="upper right")
    for policy in _order(set(eps)):
        ep, kw = eps[policy], style(policy)
        line = {"color": kw["color"], "zorder": kw["zorder"], "linewidth": 1.2,
                "marker": kw["marker"], "markevery": max(1, len(t) // 12), "markersize": 5}
        axes[1].plot(t, [s.stats.energy_j / interval_s for s in ep.steps], **line)
        axes[2].plot(t, [s.stats.accuracy_rank_sum for s in ep.steps], **line)
    axes[1].set_ylabel("power (W)")
    axes[2].set_ylabel("accuracy (sum over stages)")
    axes[2].set_xlabel("time in window (s)")
    fig.suptitle(f"{window}, simulator seed {seed}")
    _legend(fig, _order(set(eps)))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_latency_cdf(episodes: Sequence[Episode], sla_ms: float, path: Path) -> None:
    """End-to-end latency CDF per window, every policy (dashed line: the SLA).

    Args:
        episodes: The evaluation's episodes (those without per-request latencies are
            left out).
        sla_ms: The end-to-end SLA drawn as the dashed line.
        path: The image file to write.
    """
    windows = sorted({ep.window for ep in episodes})
    fig, axes = plt.subplots(1, len(windows), figsize=(4.4 * len(windows), 4.2), squeeze=False)
    for ax, window in zip(axes[0], windows, strict=True):
        by_policy: dict[str, list[np.ndarray]] = defaultdict(list)
        for ep in episodes:
            if ep.window == window and ep.latencies_ms.size:
                by_policy[ep.policy].append(ep.latencies_ms)
        for policy in _order(set(by_policy)):
            lat = np.sort(np.concatenate(by_policy[policy]))
            kw = style(policy)
            ax.plot(lat, np.arange(1, lat.size + 1) / lat.size, color=kw["color"],
                    zorder=kw["zorder"], marker=kw["marker"], markevery=max(1, lat.size // 8),
                    markersize=5, linewidth=1.0)
        ax.axvline(sla_ms, color="black", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(window)
        ax.set_xlabel("end-to-end latency (ms)")
    axes[0][0].set_ylabel("CDF")
    _legend(fig, _order({ep.policy for ep in episodes}))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
