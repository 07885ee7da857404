"""The summary table, CSV files and Markdown report of an evaluation (plots:
agents.evaluation.plots, statistics: agents.evaluation.statistics)."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agents.evaluation.episode import ENERGY_COLUMNS, Episode
from agents.evaluation.plots import plot_latency_cdf, plot_pareto, plot_timeseries
from agents.evaluation.statistics import cells, mean_ci95, paired_against, paired_test
from envs.model.floor import EnergyFloor, energy_floor, over_floor
from envs.model.spec import Pipeline

__all__ = ["SUMMARY_COLUMNS", "mean_ci95", "paired_test", "summarise", "window_floors",
           "write_report"]

CI_METRICS = ("sla_violation_rate", "accuracy_requests", "energy_j")
SUMMARY_COLUMNS = (
    "policy", "workload", "n_train_seeds", "n_sim_seeds", "ci_over",
    "sla_violation_rate", "sla_violation_rate_ci95", "p99_latency_ms",
    "accuracy_requests", "accuracy_requests_ci95", "accuracy", "accuracy_product",
    "cost_core_s", *ENERGY_COLUMNS, "energy_j_ci95", "energy_estimated", "energy_method",
    "energy_per_request_j", "floor_j", "energy_over_floor", "reconfigurations",
    "decision_ms_median", "decision_ms_p99", "fallbacks", "kept", "reward",
)
MEAN_METRICS = ("p99_latency_ms", "accuracy", "accuracy_product", "cost_core_s",
                "energy_per_request_j", "reconfigurations", "fallbacks", "kept", "reward",
                *(c for c in ENERGY_COLUMNS if c not in CI_METRICS))


def window_floors(episodes: Sequence[Episode], pipeline: Pipeline) -> dict[str, EnergyFloor]:
    """The energy floor of each window (`envs.model.floor`): its mean arrivals over the
    simulator seeds (every policy sees the same requests on a seed) over its seconds.

    Args:
        episodes: The evaluation's episodes.
        pipeline: The evaluated pipeline, loaded as the env loads it.
    """
    by_window: dict[str, list[Episode]] = defaultdict(list)
    for ep in episodes:
        by_window[ep.window].append(ep)
    floors = {}
    for window, eps in by_window.items():
        arrived = float(np.mean([sum(s.stats.arrived for s in ep.steps) for ep in eps]))
        seconds = float(np.mean([sum(s.stats.seconds for s in ep.steps) for ep in eps]))
        floors[window] = energy_floor(pipeline, arrived, seconds)
    return floors


def summarise(episodes: Sequence[Episode], pipeline: Pipeline) -> list[dict[str, object]]:
    """One row per (policy, workload): means, and 95 % CIs across training seeds (two or
    more) or else across simulator seeds (`agents.evaluation.statistics`); the window's
    energy floor and the energy over it.

    Args:
        episodes: The evaluation's episodes.
        pipeline: The evaluated pipeline (its SLA, and its power model for the floor).

    Returns:
        The summary rows, keyed by `SUMMARY_COLUMNS`.
    """
    sla_ms = pipeline.sla_ms
    groups: dict[tuple[str, str], list[Episode]] = defaultdict(list)
    for ep in episodes:
        groups[(ep.policy, ep.window)].append(ep)
    table = cells(episodes, sla_ms)
    floors = window_floors(episodes, pipeline)
    rows = []
    for (policy, window), eps in groups.items():
        per_episode = [ep.metrics(sla_ms) for ep in eps]
        train_seeds = sorted({ep.train_seed for ep in eps})
        over_train = len(train_seeds) >= 2
        units = ([table[(policy, window, s)] for s in train_seeds] if over_train
                 else per_episode)
        row: dict[str, object] = {
            "policy": policy, "workload": window, "n_train_seeds": len(train_seeds),
            "n_sim_seeds": len({ep.seed for ep in eps}),
            "ci_over": "training seeds" if over_train else "simulator seeds",
        }
        for metric in CI_METRICS:
            row[metric], row[f"{metric}_ci95"] = mean_ci95([u[metric] for u in units])
        for metric in MEAN_METRICS:
            row[metric] = float(np.mean([m[metric] for m in per_episode]))
        row["floor_j"] = floors[window].total_j
        row["energy_over_floor"] = over_floor(float(row["energy_j"]), floors[window])
        row["decision_ms_median"] = float(np.median([m["decision_ms_median"]
                                                     for m in per_episode]))
        row["decision_ms_p99"] = float(np.median([m["decision_ms_p99"] for m in per_episode]))
        row["energy_estimated"] = any(ep.energy_estimated for ep in eps)
        row["energy_method"] = "; ".join(sorted({ep.energy_method for ep in eps}))
        rows.append(row)
    return rows


def fmt(value: object) -> str:
    """The one formatting used by both the CSV and the Markdown tables.

    Args:
        value: A cell's value.

    Returns:
        ``true``/``false`` for bools, ``nan`` or 6 significant digits for floats,
        ``str(value)`` otherwise.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return str(value)


def write_csv(rows: Sequence[dict[str, object]], path: Path,
              columns: Sequence[str] | None = None) -> None:
    """Write rows with `fmt`.

    Args:
        rows: The rows to write.
        path: The CSV file.
        columns: The columns, in order (default: the first row's keys).
    """
    columns = list(columns or (rows[0].keys() if rows else []))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([fmt(row[c]) for c in columns])


def write_steps_csv(episodes: Sequence[Episode], path: Path) -> None:
    """Every interval of every episode, every policy; energy parts and reward terms as
    their own columns.

    Args:
        episodes: The evaluation's episodes.
        path: The CSV file.
    """
    rows = [{"policy": ep.policy, "workload": ep.window, "seed": ep.seed,
             "train_seed": ep.train_seed, **step.row()}
            for ep in episodes for step in ep.steps]
    write_csv(rows, path)


def markdown_table(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    """A Markdown table of ``columns`` with `fmt`.

    Args:
        rows: The table's rows.
        columns: The columns to show, in order.

    Returns:
        The table's Markdown text (no trailing newline).
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


STATISTICS_TEXT = (
    "A (training seed, window) cell's value is the mean over simulator seeds, which share "
    "common random numbers (every policy sees the same requests); the unit of replication "
    "is the training seed (see the paired differences). "
    "`ci_over` says whether a row's 95 % Student-t CI is across training seeds (two or "
    "more) or only across simulator seeds (rules, or a single agent). `accuracy_requests` "
    "weights each interval's accuracy by the requests it served; `accuracy` is the time "
    "average.")
FLOOR_TEXT = (
    "`floor_j` is the window's energy floor (`envs.model.floor`): a lower bound no policy "
    "serving every request can beat under this power model (each request at the lowest "
    "dynamic J per request of any variant, the fewest device- and node-seconds any "
    "allocation needs; SLA, accuracy, cold starts and the replica limit ignored), not an "
    "achievable point; `energy_over_floor` = energy_j / floor_j.")
PAIRED_TEXT = (
    "Paired against IPA on the same windows and simulator seeds; mean_diff = policy - ipa "
    "(`energy_rel`: policy / ipa - 1). The unit of replication is the training seed: in "
    "`workload` all, a seed's value is the mean of its windows' differences (windows are "
    "nested in seeds), so n_units is the number of training runs; a policy with one "
    "training seed (every rule) has the windows as units (`unit` window; windows that share "
    "trace seconds are not independent). Student-t 95 % CI over the units; exact two-sided "
    "Wilcoxon signed-rank p-value over them; `min_p` = 2 / 2^n is the smallest p-value n "
    "units can reach.")


def write_report(episodes: Sequence[Episode], pipeline: Pipeline, report_dir: Path,
                 header: str, interval_s: int = 10
                 ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Write summary.csv, paired.csv, steps.csv, the plots and report.md.

    Args:
        episodes: The evaluation's episodes.
        pipeline: The evaluated pipeline (its SLA and power model).
        report_dir: The folder to write into.
        header: The report's opening Markdown (title and run details).
        interval_s: The env's interval length, for the power plots.

    Returns:
        The summary rows and the paired rows.
    """
    sla_ms = pipeline.sla_ms
    rows = summarise(episodes, pipeline)
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
        plot_timeseries(episodes, window, first_seed, report_dir / name, interval_s)
        plots.append((f"Load, forecast, power and accuracy, {window}", name))
    plot_pareto(rows, report_dir / "pareto_energy_accuracy.png")
    plot_pareto(rows, report_dir / "sla_vs_energy.png", y="sla_violation_rate",
                ylabel="SLA violation rate")
    plots += [("Energy vs request-weighted accuracy (95 % CIs)", "pareto_energy_accuracy.png"),
              ("SLA violations vs energy (95 % CIs)", "sla_vs_energy.png")]
    if any(ep.latencies_ms.size for ep in episodes):
        plot_latency_cdf(episodes, sla_ms, report_dir / "latency_cdf.png")
        plots.append(("Latency CDF", "latency_cdf.png"))
    lines = [header, "", "## Summary", "", STATISTICS_TEXT, "", FLOOR_TEXT, ""]
    estimated = sorted({str(r["energy_method"]) for r in rows if r["energy_estimated"]})
    if estimated:
        lines += [f"Energy figures are **estimated** as the backend reported them each "
                  f"interval; method: {'; '.join(estimated)} (`energy_method` in "
                  "summary.csv).", ""]
    # energy_method is stated once above (and is in summary.csv)
    lines.append(markdown_table(rows, [c for c in SUMMARY_COLUMNS if c != "energy_method"]))
    if paired:
        lines += ["", "## Paired differences against IPA", "", PAIRED_TEXT, "",
                  markdown_table(paired, list(paired[0].keys()))]
    for title, name in plots:
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    (report_dir / "report.md").write_text("\n".join(lines) + "\n")
    return rows, paired
