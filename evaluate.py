"""Evaluate every policy on held-out workloads and write one report.

    python evaluate.py                                  # embedded default: synthetic windows
    python evaluate.py --trace FILE                     # FILE alone, whole, as it is
    python evaluate.py --config configs/eval/ipa_windows.yaml --trace workload.txt \
        --agent runs/<seed0> runs/<seed1> runs/<seed2>  # one folder per training seed
    python evaluate.py seeds=[0,1] windows=[{name: bursty, pattern: bursty}]   # overrides

``--trace FILE`` without ``--config`` (and no ``windows=`` override) evaluates FILE as
one window: its first ``env.workload.warmup_s`` seconds are the warm-up history, the rest
is played, undamped (``trace_damping=8`` to damp it as IPA did). A flag the config does
not use (``--trace`` with only synthetic windows) is an error.

Writes reports/<name>/report.md, summary.csv, paired.csv, steps.csv and PNG plots, and
logs them to wandb (offline by default).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from agents.eval_config import EvalConfig, WindowSpec
from agents.evaluation import evaluate
from agents.report import write_report
from envs.cli import command_line, report_error
from envs.config import load_config, to_dict
from envs.env_config import EnvConfig
from envs.errors import IpaEnergyError
from envs.traces import load_trace


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="evaluation config (YAML)")
    parser.add_argument("--trace", type=Path, help="per-second rate trace for trace windows")
    parser.add_argument("--agent", type=Path, nargs="+", default=[],
                        help="train.py run folders of the PPO agent, one per training seed, "
                             "or a train.py --sweep folder over seeds (each trial's agent)")
    parser.add_argument("--backend", choices=["fluid", "requests", "live"],
                        help="backend to evaluate on (default: the config's, requests); live "
                             "plays every window in real time on model servers")
    parser.add_argument("--name", help="report name (default: the config's)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value config overrides")
    args = parser.parse_args(argv)
    # --agent takes several folders; key=value words after them are still overrides
    folders = [a for a in args.agent if "=" not in str(a) or a.exists()]
    args.overrides = [str(a) for a in args.agent if a not in folders] + args.overrides
    from agents.sweep_dirs import agent_run_dirs

    args.agent = [run for folder in folders for run in agent_run_dirs(folder)]
    return args


def load(args: argparse.Namespace) -> EvalConfig:
    """The evaluation config from the flags; refuses a flag the config does not use."""
    overrides = list(args.overrides)
    if args.backend:
        overrides.append(f"env.backend={args.backend}")
    if args.name:
        overrides.append(f"name={args.name}")
    if args.trace is not None and not args.trace.is_file():
        raise IpaEnergyError(f"trace file {args.trace} does not exist; check --trace")
    trace_alone = (args.trace is not None and args.config is None
                   and not any(o.startswith("windows=") for o in overrides))
    if trace_alone:
        # FILE is not IPA's trace: no day split, tuning and sizing from synthetic data.
        overrides = [f"name={args.trace.stem}", "trace_damping=1.0", "days.train_days=[]",
                     "days.val_days=[]", *overrides]
    config = load_config(EvalConfig, args.config, overrides)
    if args.agent:
        # The agents' observation and action spaces come from the env they were trained
        # on: evaluate every policy on that env, on this config's backend and windows.
        from agents.eval_config import refuse_training_overlap
        from agents.policy import find_model
        from agents.train_config import load_train_config

        for folder in args.agent:
            find_model(folder)
        trained_env = same_env(args.agent)
        conditions = {name: getattr(config.env, name) for name in EVALUATION_CONDITIONS}
        config = replace(config, env=replace(trained_env, **conditions))
        for folder in args.agent:
            refuse_training_overlap(load_train_config(folder / "config.yaml"), config,
                                    args.trace.name if args.trace else None)
        if "ppo" not in config.policies:
            config = replace(config, policies=("ppo", *config.policies))
    if trace_alone:
        seconds = len(load_trace(args.trace))
        warmup = config.env.workload.warmup_s
        if seconds <= warmup + config.env.interval_s:
            raise IpaEnergyError(f"trace {args.trace} has {seconds} s, too short for "
                                 f"{warmup} s of warm-up history and one interval")
        config = replace(config, windows=(WindowSpec(args.trace.stem,
                                                     segments=((warmup, seconds),)),))
    elif args.trace is not None and not config.uses_trace:
        raise IpaEnergyError(f"--trace {args.trace} is given but config {config.name!r} "
                             "uses no trace (all its windows are synthetic); drop --trace, "
                             "or drop --config to evaluate the trace alone")
    return config


EVALUATION_CONDITIONS = ("backend", "idle_power_scale", "model_load_scale", "fleet")
"""Env fields the evaluation sets over the agents' trained env: the backend and the
sensitivity knobs (idle power, model load time, fleet mode) every policy is scored under."""


def same_env(run_dirs: list[Path]) -> EnvConfig:
    """The env the agents were trained on; they are training seeds of one agent, so their
    envs must be equal except for the training workload's seed."""
    from agents.train_config import load_train_config

    envs = [load_train_config(d / "config.yaml").env for d in run_dirs]
    key = [replace(e, workload=replace(e.workload, seed=0)) for e in envs]
    for run_dir, k in zip(run_dirs[1:], key[1:], strict=True):
        if k != key[0]:
            raise IpaEnergyError(
                f"{run_dir} was trained on another env than {run_dirs[0]} (beyond the "
                "workload seed): --agent takes training seeds of one agent; evaluate other "
                "settings (e.g. reward weights) with separate evaluate.py runs")
    return envs[0]


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
    try:
        args = parse_args(argv)
        config = load(args)
        report_dir = Path(config.output_dir) / config.name
        report_dir.mkdir(parents=True, exist_ok=True)
        runs = len(config.policies) + max(len(args.agent) - 1, 0)
        total = (len(config.windows) + config.heldout.windows) * len(config.seeds) * runs
        bar = tqdm(total=total, desc="evaluating", unit="episode")
        episodes = []
        for episode in evaluate(config, report_dir, args.trace, args.agent,
                                progress=bar.set_postfix_str):
            episodes.append(episode)
            bar.update()
        bar.close()
        sla_ms = _sla_ms(config)
        command = " ".join(argv if argv is not None else sys.argv[1:])
        header = report_header(config, args.trace, command, sla_ms, len(args.agent),
                               report_dir)
        rows, _ = write_report(episodes, sla_ms, report_dir, header, config.env.interval_s)
        log_to_wandb(config, report_dir, rows)
    except IpaEnergyError as err:
        return report_error("evaluate.py", err)
    print(f"wrote {report_dir / 'report.md'}")
    return 0


def report_header(config: EvalConfig, trace: Path | None, command: str, sla_ms: float,
                  n_agents: int, report_dir: Path | None = None) -> str:
    """The report's opening: command, setting, protocol and workload table."""
    from agents.evaluation import training_peak

    peak = training_peak(config, trace)
    return "\n".join([
        f"# Evaluation report: {config.name}", "",
        f"Command: `python evaluate.py {command}`", "",
        f"Backend: {config.env.backend}; pipeline: {config.env.pipeline}; SLA {sla_ms:.0f} "
        f"ms; simulator seeds: {list(config.seeds)} (common random numbers: every policy "
        f"sees the same requests on a seed); PPO training seeds: {n_agents}.", "",
        f"Protocol: every window starts after {config.env.workload.warmup_s} s of the "
        "history that preceded it; observation rates are divided by the configured "
        f"{config.env.rate_scale_rps:g} req/s; static baselines and RIM are sized for "
        f"{peak.rps:g} req/s ({peak.source}); HPA, Ray Serve, ipa_tuned and ipa_energy are "
        f"tuned on validation windows (docs/protocol.md){tuned_values(report_dir)}. "
        "ipa_oracle reads the next interval's true rates by design.", "",
        workload_table(config, trace)])


def tuned_values(report_dir: Path | None) -> str:
    """``: hpa 0.7, ...`` from the evaluation's ``tuning/tuned.json`` ("" without one)."""
    path = report_dir / "tuning" / "tuned.json" if report_dir is not None else None
    if path is None or not path.is_file():
        return ""
    values = json.loads(path.read_text())
    return " (chosen: " + ", ".join(f"{k} {v:g}" for k, v in values.items()) + ")"


def workload_table(config: EvalConfig, trace: Path | None) -> str:
    """Where each window comes from, and its rates, for the report."""
    from agents.evaluation import evaluation_windows

    lines = ["| workload | source | seconds | mean req/s | max req/s |", "|---|---|---|---|---|"]
    for window in evaluation_windows(config, trace):
        rates = window.rates
        lines.append(f"| {window.name} | {window.source} | {len(rates)} | "
                     f"{rates.mean():.1f} | {rates.max():.0f} |")
    return "\n".join(lines)


def _sla_ms(config: EvalConfig) -> float:
    from envs.profiles import load_pipeline

    return load_pipeline(config.env.pipeline, config.env.sla_ms, config.env.batch_sizes).sla_ms


if __name__ == "__main__":
    sys.exit(main())
