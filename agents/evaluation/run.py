"""One evaluation run end to end: every episode, the report (with its header) and the W&B
log. ``evaluate.py`` parses its flags and calls `run_evaluation`."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from agents.evaluation.compare import check_fleet_holds, evaluate
from agents.evaluation.config import EvalConfig
from agents.evaluation.report import write_report
from agents.evaluation.windows import evaluation_windows, shared_seconds, training_peak
from agents.runs.tracking import check_wandb_reachable
from envs.config.loader import to_dict
from envs.env_pipeline import env_pipeline

__all__ = ["log_evaluation", "report_header", "run_evaluation", "tuned_values", "workload_table"]


def run_evaluation(config: EvalConfig, trace: Path | None, agents: list[Path],
                   command: str) -> Path:
    """Play every episode of ``config``, write its report and log it.

    Args:
        config: The checked evaluation config (`agents.evaluation.setup.eval_config_from_flags`).
        trace: The ``--trace`` file, or None.
        agents: ``train.py`` run folders, one per training seed.
        command: The command line's arguments, for the report.

    Returns:
        The path of ``report.md``.

    Raises:
        IpaEnergyError: Anything the evaluation refuses (one line, names the fix).
    """
    env = config.env
    pipeline = env_pipeline(env)  # a bad profile stops before the bar
    windows = evaluation_windows(config, trace)
    check_fleet_holds(config, windows)
    report_dir = Path(config.output_dir) / config.name
    report_dir.mkdir(parents=True, exist_ok=True)
    runs = len(config.policies) + max(len(agents) - 1, 0)
    total = (len(config.windows) + config.heldout.windows) * len(config.seeds) * runs
    bar = tqdm(total=total, desc="evaluating", unit="episode")
    episodes = []
    for episode in evaluate(config, report_dir, trace, agents, progress=bar.set_postfix_str,
                            windows=windows):
        episodes.append(episode)
        bar.update()
    bar.close()
    header = report_header(config, trace, command, pipeline.sla_ms, len(agents), report_dir)
    rows, _ = write_report(episodes, pipeline, report_dir, header, env.interval_s)
    log_evaluation(config, report_dir, rows)
    return report_dir / "report.md"


def report_header(config: EvalConfig, trace: Path | None, command: str, sla_ms: float,
                  n_agents: int, report_dir: Path | None = None) -> str:
    """The report's opening: command, setting, protocol and workload table.

    Args:
        config: The evaluation config.
        trace: The ``--trace`` file, or None.
        command: The command line's arguments.
        sla_ms: The pipeline's SLA.
        n_agents: How many training seeds the learned agent (``ppo`` or ``residual``) has.
        report_dir: The report folder (its ``tuning/tuned.json`` is quoted), or None.

    Returns:
        Markdown text.
    """
    peak = training_peak(config, trace)
    return "\n".join([
        f"# Evaluation report: {config.name}", "",
        f"Command: `python evaluate.py {command}`", "",
        f"Backend: {config.env.backend}; pipeline: {config.env.pipeline}; SLA {sla_ms:.0f} "
        f"ms; simulator seeds: {list(config.seeds)} (common random numbers: every policy "
        f"sees the same requests on a seed); learned agent's training seeds: {n_agents}.", "",
        f"Protocol: every window starts after {config.env.workload.warmup_s} s of the "
        "history that preceded it; observation rates are divided by the configured "
        f"{config.env.rate_scale_rps:g} req/s; static baselines and RIM are sized for "
        f"{peak.rps:g} req/s ({peak.source}); HPA, Ray Serve, ipa_tuned and ipa_energy are "
        f"tuned on validation windows (docs/protocol.md){tuned_values(report_dir)}. "
        "ipa_oracle reads the next interval's true rates by design.", "",
        *overlap_note(config),
        workload_table(config, trace)])


def overlap_note(config: EvalConfig) -> list[str]:
    """The report's warning where windows are not independent (`shared_seconds`).

    Args:
        config: The evaluation config.

    Returns:
        The paragraph and a blank line, or nothing.
    """
    found = shared_seconds(config)
    if not found:
        return []
    return ["Windows that are not independent (count them as one unit where they overlap): "
            + "; ".join(found) + ".", ""]


def tuned_values(report_dir: Path | None) -> str:
    """``(chosen: hpa 0.7, ...)`` from the evaluation's ``tuning/tuned.json``, each with the
    grid it was chosen from (``tuning/grids.json``) and whether it lies on the grid's edge.

    Args:
        report_dir: The report folder, or None.

    Returns:
        The text, or "" without the file.
    """
    path = report_dir / "tuning" / "tuned.json" if report_dir is not None else None
    if path is None or not path.is_file():
        return ""
    values = json.loads(path.read_text())
    grids_path = path.parent / "grids.json"
    played = json.loads(grids_path.read_text()).get("grids", {}) if grids_path.is_file() else {}
    parts = []
    for name, value in values.items():
        text = f"{name} {value:g}"
        if name in played:
            grid = played[name]["grid"]
            edge = ", on its edge" if played[name]["at_edge"] else ""
            text += f" of [{', '.join(f'{g:g}' for g in grid)}]{edge}"
        parts.append(text)
    return " (chosen: " + "; ".join(parts) + ")"


def workload_table(config: EvalConfig, trace: Path | None) -> str:
    """Where each window comes from, and its rates, for the report.

    Args:
        config: The evaluation config.
        trace: The ``--trace`` file, or None.

    Returns:
        A Markdown table.
    """
    lines = ["| workload | source | seconds | mean req/s | max req/s |", "|---|---|---|---|---|"]
    for window in evaluation_windows(config, trace):
        rates = window.rates
        lines.append(f"| {window.name} | {window.source} | {len(rates)} | "
                     f"{rates.mean():.3g} | {rates.max():.3g} |")
    return "\n".join(lines)


def log_evaluation(config: EvalConfig, report_dir: Path, rows: list[dict[str, object]]
                   ) -> None:
    """Log an evaluation's summary table and plots as one W&B run (unless disabled).

    Args:
        config: The evaluation config (its ``tracking`` section).
        report_dir: The report folder (its PNG plots are logged; W&B files go there).
        rows: The summary rows.

    Raises:
        ConfigError: ``tracking.mode=online`` and the server is unreachable.
    """
    if config.tracking.mode == "disabled":
        return
    import wandb

    if config.tracking.mode == "online":
        check_wandb_reachable()
    run = wandb.init(project=config.tracking.project, name=f"eval-{config.name}",
                     mode=config.tracking.mode, dir=str(report_dir), config=to_dict(config),
                     job_type="evaluate")
    columns = list(rows[0].keys())
    run.log({"eval/summary": wandb.Table(columns=columns,
                                         data=[[r[c] for c in columns] for r in rows])})
    for png in sorted(report_dir.glob("*.png")):
        run.log({f"plots/{png.stem}": wandb.Image(str(png))})
    run.finish()
