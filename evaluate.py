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
import sys
from pathlib import Path

from envs.config.cli import command_line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line's flags; ``--agent`` folders expanded (a sweep folder: its trials).

    Args:
        argv: The arguments (None: ``sys.argv[1:]``).

    Returns:
        The flags; ``overrides`` includes ``--backend`` and ``--name`` as overrides.
    """
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="evaluation config (YAML)")
    parser.add_argument("--trace", type=Path, help="per-second rate trace for trace windows")
    parser.add_argument("--agent", type=Path, nargs="+", default=[],
                        help="train.py run folders of the PPO agent (or of the residual one: "
                             "agent.residual), one per training seed, or a train.py --sweep "
                             "folder over seeds (each trial's agent)")
    parser.add_argument("--backend", choices=["fluid", "requests", "live"],
                        help="backend to evaluate on (default: the config's, requests); live "
                             "plays every window in real time on model servers")
    parser.add_argument("--name", help="report name (default: the config's)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value config overrides")
    args = parser.parse_args(argv)
    # --agent takes several folders; key=value words after them are still overrides
    folders = [a for a in args.agent if "=" not in str(a) or a.exists()]
    args.overrides = [str(a) for a in args.agent if a not in folders] + args.overrides
    if args.backend:
        args.overrides.append(f"env.backend={args.backend}")
    if args.name:
        args.overrides.append(f"name={args.name}")
    from agents.sweeps.dirs import agent_run_dirs

    args.agent = [run for folder in folders for run in agent_run_dirs(folder)]
    return args


@command_line("evaluate.py")
def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2: a package error, one line).

    Args:
        argv: The arguments (None: ``sys.argv[1:]``).

    Returns:
        0 with the report written, 2 for a package error (bad flag, config or file), 130
        interrupted.
    """
    args = parse_args(argv)
    from agents.evaluation.run import run_evaluation
    from agents.evaluation.setup import eval_config_from_flags

    config = eval_config_from_flags(args.config, args.trace, args.agent, args.overrides)
    command = " ".join(argv if argv is not None else sys.argv[1:])
    report = run_evaluation(config, args.trace, args.agent, command)
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
