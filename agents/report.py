"""Statistics, CSV files, plots and the Markdown report of an evaluation."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from agents.evaluation import Episode  # noqa: E402

SUMMARY_COLUMNS = (
    "policy", "workload", "n_seeds", "sla_violation_rate", "sla_violation_rate_ci95",
    "p99_latency_ms", "accuracy", "accuracy_product", "cost_core_s", "energy_j",
    "energy_j_ci95", "energy_estimated", "energy_per_request_j", "reconfigurations",
    "decision_ms_median", "decision_ms_p99", "fallbacks",
)
PAIRED_METRICS = ("energy_j", "sla_violation_rate", "accuracy")
BOOTSTRAP_RESAMPLES = 10_000


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % Student-t confidence interval."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float(x.mean()), math.nan
    half = scipy_stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, float]:
    """Paired differences a - b across seeds: mean, bootstrap 95 % CI, Wilcoxon p-value."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    resampled = rng.choice(diff, size=(BOOTSTRAP_RESAMPLES, diff.size)).mean(axis=1)
    lo, hi = np.percentile(resampled, [2.5, 97.5])
    if np.allclose(diff, 0.0):
        p = 1.0
    else:
        p = float(scipy_stats.wilcoxon(diff, zero_method="zsplit").pvalue)
    return {"mean_diff": float(diff.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "wilcoxon_p": p}


def summarise(episodes: Sequence[Episode], sla_ms: float) -> list[dict[str, object]]:
    """One row per (policy, workload): means across seeds, CIs for violations and energy."""
    groups: dict[tuple[str, str], list[Episode]] = defaultdict(list)
    for ep in episodes:
        groups[(ep.policy, ep.window)].append(ep)
    rows = []
    for (policy, window), eps in groups.items():
        metrics = [ep.metrics(sla_ms) for ep in eps]

        def column(key: str, metrics: list[dict[str, float]] = metrics) -> list[float]:
            return [m[key] for m in metrics]

        viol, viol_ci = mean_ci95(column("sla_violation_rate"))
        energy, energy_ci = mean_ci95(column("energy_j"))
        rows.append({
            "policy": policy, "workload": window, "n_seeds": len(eps),
            "sla_violation_rate": viol, "sla_violation_rate_ci95": viol_ci,
            "p99_latency_ms": float(np.mean(column("p99_latency_ms"))),
            "accuracy": float(np.mean(column("accuracy"))),
            "accuracy_product": float(np.mean(column("accuracy_product"))),
            "cost_core_s": float(np.mean(column("cost_core_s"))),
            "energy_j": energy, "energy_j_ci95": energy_ci,
            "energy_estimated": any(ep.energy_estimated for ep in eps),
            "energy_per_request_j": float(np.mean(column("energy_per_request_j"))),
            "reconfigurations": float(np.mean(column("reconfigurations"))),
            "decision_ms_median": float(np.median(column("decision_ms_median"))),
            "decision_ms_p99": float(np.median(column("decision_ms_p99"))),
            "fallbacks": float(np.mean(column("fallbacks"))),
        })
    return rows


def paired_against(episodes: Sequence[Episode], sla_ms: float, reference: str = "ipa"
                   ) -> list[dict[str, object]]:
    """Per window and policy, paired differences (same seeds) against ``reference``."""
    by_key = {(ep.policy, ep.window, ep.seed): ep.metrics(sla_ms) for ep in episodes}
    windows = sorted({ep.window for ep in episodes})
    policies = sorted({ep.policy for ep in episodes} - {reference})
    rows = []
    for window in windows:
        seeds = sorted({s for (p, w, s) in by_key if p == reference and w == window})
        for policy in policies:
            paired = [s for s in seeds if (policy, window, s) in by_key]
            if len(paired) < 2:
                continue
            for metric in PAIRED_METRICS:
                result = paired_test([by_key[(policy, window, s)][metric] for s in paired],
                                     [by_key[(reference, window, s)][metric] for s in paired])
                rows.append({"policy": policy, "workload": window, "metric": metric,
                             "n_pairs": len(paired), **result})
    return rows


def fmt(value: object) -> str:
    """The one formatting used by both the CSV and the Markdown tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return str(value)


def write_csv(rows: Sequence[dict[str, object]], path: Path,
              columns: Sequence[str] | None = None) -> None:
    columns = list(columns or (rows[0].keys() if rows else []))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([fmt(row[c]) for c in columns])


def write_steps_csv(episodes: Sequence[Episode], path: Path) -> None:
    rows = [{"policy": ep.policy, "workload": ep.window, "seed": ep.seed, **asdict(step)}
            for ep in episodes for step in ep.steps]
    write_csv(rows, path)


def markdown_table(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def plot_timeseries(episodes: Sequence[Episode], window: str, seed: int, path: Path) -> None:
    """Load and each policy's cores and accuracy over time (one seed)."""
    eps = [ep for ep in episodes if ep.window == window and ep.seed == seed]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    t = [s.t_s for s in eps[0].steps]
    axes[0].plot(t, [s.rate_rps for s in eps[0].steps], color="black")
    axes[0].set_ylabel("load (req/s)")
    for ep in eps:
        axes[1].plot(t, [s.cores for s in ep.steps], label=ep.policy)
        axes[2].plot(t, [s.accuracy_sum for s in ep.steps], label=ep.policy)
    axes[1].set_ylabel("cores")
    axes[2].set_ylabel("accuracy (sum of ranks)")
    axes[2].set_xlabel("time (s)")
    axes[1].legend(fontsize=7, ncol=3)
    fig.suptitle(f"{window}, seed {seed}: load and decisions")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_scatter(rows: Sequence[dict[str, object]], x: str, y: str, path: Path,
                 title: str) -> None:
    windows = sorted({str(r["workload"]) for r in rows})
    fig, axes = plt.subplots(1, len(windows), figsize=(4.2 * len(windows), 3.8), squeeze=False)
    for ax, window in zip(axes[0], windows, strict=True):
        for r in rows:
            if r["workload"] == window:
                ax.scatter(float(r[x]), float(r[y]))
                ax.annotate(str(r["policy"]), (float(r[x]), float(r[y])), fontsize=7)
        ax.set_title(window)
        ax.set_xscale("log")
        ax.set_xlabel(f"{x} (log)")
        ax.set_ylabel(y)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_latency_cdf(episodes: Sequence[Episode], sla_ms: float, path: Path) -> None:
    windows = sorted({ep.window for ep in episodes})
    fig, axes = plt.subplots(1, len(windows), figsize=(4.2 * len(windows), 3.8), squeeze=False)
    for ax, window in zip(axes[0], windows, strict=True):
        by_policy: dict[str, list[np.ndarray]] = defaultdict(list)
        for ep in episodes:
            if ep.window == window and ep.latencies_ms.size:
                by_policy[ep.policy].append(ep.latencies_ms)
        for policy, parts in sorted(by_policy.items()):
            lat = np.sort(np.concatenate(parts))
            ax.plot(lat, np.arange(1, lat.size + 1) / lat.size, label=policy)
        ax.axvline(sla_ms, color="black", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(window)
        ax.set_xlabel("end-to-end latency (ms)")
    axes[0][0].set_ylabel("CDF")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(episodes: Sequence[Episode], sla_ms: float, report_dir: Path,
                 header: str) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Write summary.csv, paired.csv, steps.csv, the plots and report.md."""
    rows = summarise(episodes, sla_ms)
    paired = paired_against(episodes, sla_ms) if any(ep.policy == "ipa" for ep in episodes) \
        else []
    write_csv(rows, report_dir / "summary.csv", SUMMARY_COLUMNS)
    if paired:
        write_csv(paired, report_dir / "paired.csv")
    write_steps_csv(episodes, report_dir / "steps.csv")
    plots = []
    first_seed = min(ep.seed for ep in episodes)
    for window in sorted({ep.window for ep in episodes}):
        name = f"timeseries_{window}.png"
        plot_timeseries(episodes, window, first_seed, report_dir / name)
        plots.append((f"Load and decisions, {window}", name))
    plot_scatter(rows, "energy_j", "accuracy", report_dir / "pareto_energy_accuracy.png",
                 "energy vs accuracy")
    plot_scatter(rows, "energy_j", "sla_violation_rate", report_dir / "sla_vs_energy.png",
                 "SLA violations vs energy")
    plots += [("Energy vs accuracy", "pareto_energy_accuracy.png"),
              ("SLA violations vs energy", "sla_vs_energy.png")]
    if any(ep.latencies_ms.size for ep in episodes):
        plot_latency_cdf(episodes, sla_ms, report_dir / "latency_cdf.png")
        plots.append(("Latency CDF", "latency_cdf.png"))
    estimated = any(r["energy_estimated"] for r in rows)
    lines = [header, "", "## Summary (mean across seeds; ± is the 95 % CI half-width)", ""]
    if estimated:
        lines += ["Energy figures are **estimated** (the profile's energy rows are "
                  "estimates; see the profile's sources).", ""]
    lines.append(markdown_table(rows, SUMMARY_COLUMNS))
    if paired:
        lines += ["", "## Paired differences against IPA (same windows and seeds)", "",
                  "mean_diff = policy - ipa; bootstrap 95 % CI; two-sided Wilcoxon "
                  "signed-rank p-value (with 5 seeds the smallest possible p is 0.0625).", "",
                  markdown_table(paired, list(paired[0].keys()))]
    for title, name in plots:
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    (report_dir / "report.md").write_text("\n".join(lines) + "\n")
    return rows, paired
