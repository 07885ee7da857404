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
import signal
import sys
from pathlib import Path

from agents.train_config import check_resume_changes, load_train_config
from envs.cli import EXIT_ERROR, EXIT_INTERRUPTED, command_line
from envs.errors import ConfigError

EXIT_CONFIG = EXIT_ERROR
EXIT_TRIALS_FAILED = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (``key.sub=value`` overrides are positional)."""
    parser = argparse.ArgumentParser(
        description="Train PPO on ipa/Pipeline-v1 into runs/<name>/.",
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


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@command_line("train.py")
def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2: a package error, printed as one line)."""
    args = parse_args(argv)
    command = shlex.join(["python", "train.py", *(sys.argv[1:] if argv is None else argv)])
    if args.sweep is not None or args.address is not None:
        return _sweep(args, command)
    try:
        if args.resume is not None:
            if args.config is not None:
                raise ConfigError("--resume uses the run's saved config.yaml; drop --config "
                                  "(overrides are allowed)")
            run_dir = args.resume
            cfg = load_train_config(run_dir / "config.yaml", args.overrides)
            check_resume_changes(load_train_config(run_dir / "config.yaml"), cfg)
        else:
            cfg = load_train_config(args.config, args.overrides)
        from agents import ppo  # torch and sb3 load only once the config is valid

        prepared = ppo.prepare(cfg)
        if args.resume is None:
            cfg, run_dir = ppo.new_run_dir(cfg, args.config.stem if args.config else None)
        if args.dry_run:
            print(f"config OK; would train into {run_dir}")
            return 0
        # Ctrl-C, and SIGINT/SIGTERM even where a shell started us with SIGINT ignored,
        # stop training with a checkpoint.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        result = ppo.train(cfg, run_dir, command, resume=args.resume is not None,
                           prepared=prepared)
    except KeyboardInterrupt:
        print("interrupted before training started", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.interrupted:
        return EXIT_INTERRUPTED
    print(f"done: {result.num_timesteps} steps; run folder {result.run_dir}")
    return 0


def _sweep(args: argparse.Namespace, command: str) -> int:
    """``--sweep``: check the sweep (exit 2 on bad input), then run it on Ray Tune."""
    from agents import sweep

    try:
        if args.sweep is None:
            raise ConfigError("--address needs --sweep SWEEP_YAML (a single run does not "
                              "use Ray)")
        if args.config is not None or args.resume is not None:
            raise ConfigError("--sweep takes its base config from the sweep file (base:) "
                              "and resumes by running it again; drop --config / --resume")
        if args.dry_run:
            _, sweep_dir, trials = sweep.prepare_sweep(args.sweep, args.overrides)
            for trial in trials:
                print(f"{sweep_dir / trial.name}: {' '.join(trial.overrides)}")
            print(f"sweep OK; {len(trials)} trials")
            return 0
        result = sweep.run_sweep(args.sweep, args.address, command, args.overrides)
    except KeyboardInterrupt:
        print(f"interrupted; trials keep their checkpoints: run `python train.py --sweep "
              f"{args.sweep}` again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.failed:
        print(f"error: {len(result.failed)} trials failed: {sorted(result.failed)}; run the "
              "same command again to retry them", file=sys.stderr)
        return EXIT_TRIALS_FAILED
    print(f"done: {len(result.rows)} trials ({len(result.skipped)} already finished); "
          f"sweep folder {result.sweep_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
