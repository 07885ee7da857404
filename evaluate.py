"""Evaluate every policy on held-out workloads and write one report.

    python evaluate.py                                  # embedded default: synthetic windows
    python evaluate.py --config configs/eval/ipa_windows.yaml --trace workload.txt \
        --agent runs/<name>
    python evaluate.py seeds=[0,1] windows=[{name: bursty, pattern: bursty}]   # overrides

Writes reports/<name>/report.md, summary.csv, paired.csv, steps.csv and PNG plots, and
logs them to wandb (offline by default).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from agents.eval_config import EvalConfig
from agents.evaluation import evaluate
from agents.report import write_report
from envs.cli import command_line, report_error
from envs.config import load_config, to_dict
from envs.errors import IpaEnergyError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="evaluation config (YAML)")
    parser.add_argument("--trace", type=Path, help="per-second rate trace for trace windows")
    parser.add_argument("--agent", type=Path,
                        help="train.py run folder of the PPO agent, or a train.py --sweep "
                             "folder (each trial's agent, as policy ppo/<trial>)")
    parser.add_argument("--backend", choices=["fluid", "requests", "live"],
                        help="backend to evaluate on (default: the config's, requests); live "
                             "plays every window in real time on model servers")
    parser.add_argument("--name", help="report name (default: the config's)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value config overrides")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> tuple[EvalConfig, list[Path] | None]:
    """The evaluation config, and the agents' run folders (None without --agent)."""
    overrides = list(args.overrides)
    if args.backend:
        overrides.append(f"env.backend={args.backend}")
    if args.name:
        overrides.append(f"name={args.name}")
    config = load_config(EvalConfig, args.config, overrides)
    agents = None
    if args.agent is not None:
        # The agent's observation and action spaces come from the env it was trained on:
        # evaluate every policy on that env, on this config's backend and windows.
        from agents.sweep_dirs import agent_run_dirs, trained_env

        agents = agent_run_dirs(args.agent)
        config = replace(config, env=replace(trained_env(agents), backend=config.env.backend))
        if "ppo" not in config.policies:
            config = replace(config, policies=("ppo", *config.policies))
    return config, agents


def log_to_wandb(config: EvalConfig, report_dir: Path, rows: list[dict[str, object]]) -> None:
    if config.tracking.mode == "disabled":
        return
    import wandb

    from agents.ppo import check_wandb_reachable

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


@command_line("evaluate.py")
def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2: a package error, one line)."""
    args = parse_args(argv)
    try:
        config, agents = load(args)
        if args.trace is not None and not args.trace.is_file():
            raise IpaEnergyError(f"trace file {args.trace} does not exist; check --trace")
        report_dir = Path(config.output_dir) / config.name
        report_dir.mkdir(parents=True, exist_ok=True)
        total = len(config.windows) * len(config.seeds) * (
            len(config.policies) + (len(agents) - 1 if agents else 0))
        bar = tqdm(total=total, desc="evaluating", unit="episode")
        episodes = []
        for episode in evaluate(config, report_dir, args.trace, agents,
                                progress=bar.set_postfix_str):
            episodes.append(episode)
            bar.update()
        bar.close()
        sla_ms = _sla_ms(config)
        header = (f"# Evaluation report: {config.name}\n\nCommand: `python evaluate.py "
                  f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
                  f"Backend: {config.env.backend}; pipeline: {config.env.pipeline}; SLA "
                  f"{sla_ms:.0f} ms; seeds: {list(config.seeds)}.")
        header += "\n\n" + workload_table(config, args.trace)
        rows, _ = write_report(episodes, sla_ms, report_dir, header)
        log_to_wandb(config, report_dir, rows)
    except IpaEnergyError as err:
        return report_error("evaluate.py", err)
    print(f"wrote {report_dir / 'report.md'}")
    return 0


def workload_table(config: EvalConfig, trace: Path | None) -> str:
    """Where each window comes from, and its rates, for the report."""
    from agents.evaluation import window_rates

    lines = ["| workload | source | seconds | mean req/s | max req/s |", "|---|---|---|---|---|"]
    for spec in config.windows:
        rates = window_rates(spec, trace, config.trace_damping)
        source = (f"trace {trace.name if trace else '?'} seconds {list(spec.segments)}, "
                  f"damping {config.trace_damping:g}" if spec.segments
                  else f"synthetic {spec.pattern}, seed {spec.seed}, scale {spec.scale:g}")
        lines.append(f"| {spec.name} | {source} | {len(rates)} | {rates.mean():.1f} | "
                     f"{rates.max():.0f} |")
    return "\n".join(lines)


def _sla_ms(config: EvalConfig) -> float:
    from envs.profiles import load_pipeline

    return load_pipeline(config.env.pipeline, config.env.sla_ms, config.env.batch_sizes).sla_ms


if __name__ == "__main__":
    sys.exit(main())
