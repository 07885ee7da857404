"""Train a PPO autoscaler on the pipeline simulator.

Usage::

    python train.py                                      # embedded defaults, a few minutes
    python train.py --config configs/train/video_ppo.yaml agent.learning_rate=1e-4 \\
        env.reward.energy=2.0                            # file + overrides, strictly checked
    python train.py --resume runs/<name>                 # continue a killed or stopped run
    python train.py --dry-run [--config ...] [key=value ...]   # check the config and exit
    python train.py --sweep configs/sweep/ci.yaml [--address ray://head:10001] [key=value ...]
                                                         # a sweep's trials on Ray Tune

Exit codes: 0 done, 1 some sweep trials failed, 2 bad configuration (nothing trained),
130 interrupted (checkpoint saved).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from agents.train_run import EXIT_TRIALS_FAILED, run_sweep_command, run_training_command
from envs.config.cli import EXIT_ERROR, EXIT_INTERRUPTED, command_line

EXIT_CONFIG = EXIT_ERROR
__all__ = ["EXIT_CONFIG", "EXIT_INTERRUPTED", "EXIT_TRIALS_FAILED", "main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (``key.sub=value`` overrides are positional).

    Args:
        argv: The arguments (None: ``sys.argv[1:]``).

    Returns:
        The parsed flags and ``overrides``.
    """
    parser = argparse.ArgumentParser(
        description="Train PPO on ipa/Pipeline-v2 into runs/<name>/.",
        epilog="Overrides use the config's dotted keys, e.g. agent.learning_rate=1e-4 "
               "run.total_timesteps=50000 env.reward.energy=2.0 tracking.mode=disabled.")
    parser.add_argument("--config", type=Path, help="YAML TrainConfig (default: embedded)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its latest checkpoint")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config, profile and workload files, then exit")
    parser.add_argument("--sweep", type=Path, metavar="SWEEP_YAML",
                        help="run a sweep file's trials on Ray Tune into runs/<sweep>/ "
                             "(again: resume it); overrides apply to every trial")
    parser.add_argument("--address", metavar="RAY_ADDRESS",
                        help="with --sweep: a running Ray cluster (host:port, "
                             "ray://host:port, auto; default: $RAY_ADDRESS, else local Ray)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    return parser.parse_args(argv)


@command_line("train.py")
def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2: a package error, printed as one line).

    Args:
        argv: The arguments (None: ``sys.argv[1:]``).

    Returns:
        0 done, 1 some sweep trials failed, 2 bad configuration (nothing trained), 130
        interrupted (checkpoint saved).
    """
    args = parse_args(argv)
    command = shlex.join(["python", "train.py", *(sys.argv[1:] if argv is None else argv)])
    if args.sweep is not None or args.address is not None:
        return run_sweep_command(args.sweep, args.address, args.config, args.resume,
                                 args.overrides, args.dry_run, command)
    return run_training_command(args.config, args.resume, args.overrides, args.dry_run,
                                command)


if __name__ == "__main__":
    sys.exit(main())
