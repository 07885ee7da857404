"""The summary table of a sweep: one row per trial from its run folder's summary.json."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from agents.sweeps.config import Trial

__all__ = ["format_table", "summary_rows", "trial_metrics", "write_summary"]


def trial_metrics(run_dir: Path) -> dict[str, float]:
    """Final step count, best validation reward and the last validation's metrics.

    Args:
        run_dir: A trial's run folder (holds ``summary.json``).

    Returns:
        ``num_timesteps``, ``best_eval_reward`` (NaN if absent) and the last validation's
        ``eval/...`` metrics, as floats.
    """
    summary = json.loads((run_dir / "summary.json").read_text())
    last = summary.get("last_eval") or {}
    return {"num_timesteps": float(summary.get("num_timesteps", 0)),
            "best_eval_reward": float(summary.get("best_eval_reward", math.nan)),
            **{k: float(v) for k, v in last.items()}}


def summary_rows(sweep_dir: Path, trials: list[Trial],
                 failed: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per trial from its run folder's ``summary.json`` (final validation metrics,
    best validation reward); trials without one are ``failed`` or ``not run``.

    Args:
        sweep_dir: The sweep folder.
        trials: The sweep's trials, in order.
        failed: Trial name -> why it failed (None: none failed).

    Returns:
        One row per trial: its name, swept values, status and validation figures.
    """
    failed = failed or {}
    rows = []
    for trial in trials:
        run_dir = sweep_dir / trial.name
        row: dict[str, Any] = {"trial": trial.name, **{k: v for k, v in trial.params.items()}}
        summary_path = run_dir / "summary.json"
        if trial.name in failed:
            row["status"] = f"failed: {failed[trial.name]}"
        elif summary_path.is_file():
            row["status"] = "done"
        else:
            row["status"] = "not run"
        metrics = trial_metrics(run_dir) if summary_path.is_file() else {}
        row.update({
            "steps": int(metrics.get("num_timesteps", 0)),
            "final_val_reward": metrics.get("eval/mean_reward", math.nan),
            "best_val_reward": metrics.get("best_eval_reward", math.nan),
            "val_energy_j": metrics.get("eval/energy_j", math.nan),
            "val_sla_violation_rate": metrics.get("eval/sla_violation_rate", math.nan),
            "energy": ("estimated" if metrics.get("eval/energy_estimated", 1.0) else
                       "measured") if metrics else "",
        })
        rows.append(row)
    return rows


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write the rows to ``summary.csv`` in the sweep folder (created if needed).

    Args:
        sweep_dir: The sweep folder.
        rows: The `summary_rows` (columns: every key of any row, in first-seen order).
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with (sweep_dir / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The summary rows as an aligned text table (final = last validation, best = best).

    Args:
        rows: The `summary_rows`.

    Returns:
        The table text, or ``(no trials)``.
    """
    if not rows:
        return "(no trials)"
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    table = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(lines)
