"""What ``train.py`` runs: one training run (new, resumed or a dry run) or a sweep.

Each function checks everything first (exit 2 on bad input, nothing trained), prints one
line saying where the result went, and returns the command's exit code.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from agents.runs.train_config import check_resume_changes, load_train_config
from agents.training.stop import STOP_REQUESTED, request_stop
from envs.config.cli import EXIT_INTERRUPTED
from envs.config.errors import ConfigError

__all__ = ["EXIT_TRIALS_FAILED", "run_sweep_command", "run_training_command"]

EXIT_TRIALS_FAILED = 1


def run_training_command(config_path: Path | None, resume: Path | None, overrides: list[str],
                         dry_run: bool, command: str) -> int:
    """Train one PPO agent into a new run folder, or continue ``resume``.

    Args:
        config_path: A YAML `TrainConfig` (None: the embedded default).
        resume: A run folder to continue from its latest checkpoint, or None.
        overrides: ``key.sub=value`` overrides.
        dry_run: Check the config, profile and workload files, then stop.
        command: The command line, recorded in the run folder.

    Returns:
        0 when done, 130 when interrupted (a checkpoint is saved).

    Raises:
        ConfigError: Bad input (and the other package errors); nothing is trained.
    """
    try:
        if resume is not None:
            if config_path is not None:
                raise ConfigError("--resume uses the run's saved config.yaml; drop --config "
                                  "(overrides are allowed)")
            run_dir = resume
            cfg = load_train_config(run_dir / "config.yaml", overrides)
            check_resume_changes(load_train_config(run_dir / "config.yaml"), cfg)
        else:
            cfg = load_train_config(config_path, overrides)
        from agents.training import ppo  # torch and sb3 load only once the config is valid

        prepared = ppo.prepare(cfg)
        if resume is None:
            cfg, run_dir = ppo.new_run_dir(cfg, config_path.stem if config_path else None)
        if dry_run:
            print(f"config OK; would train into {run_dir}")
            return 0
        # Ctrl-C, and SIGINT/SIGTERM even where a shell started us with SIGINT ignored,
        # stop training at the next step with a checkpoint (agents.training.stop).
        STOP_REQUESTED.clear()
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        result = ppo.train(cfg, run_dir, command, resume=resume is not None,
                           prepared=prepared)
    except KeyboardInterrupt:
        print("interrupted before training started", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.interrupted:
        return EXIT_INTERRUPTED
    print(f"done: {result.num_timesteps} steps; run folder {result.run_dir}")
    return 0


def run_sweep_command(sweep_path: Path | None, address: str | None, config_path: Path | None,
                      resume: Path | None, overrides: list[str], dry_run: bool,
                      command: str) -> int:
    """Check a sweep, then run its trials on Ray Tune (again: resume it).

    Args:
        sweep_path: The sweep YAML (``--sweep``).
        address: A running Ray cluster, or None (``$RAY_ADDRESS``, else local Ray).
        config_path: Must be None (the sweep file names its base config).
        resume: Must be None (a sweep resumes by running it again).
        overrides: ``key.sub=value`` overrides applied to every trial.
        dry_run: List the trials and stop.
        command: The command line, recorded in each trial's folder.

    Returns:
        0 when done, 1 when some trials failed, 130 when interrupted.

    Raises:
        ConfigError: Bad input; no trial is run.
    """
    from agents.sweeps import sweep

    try:
        if sweep_path is None:
            raise ConfigError("--address needs --sweep SWEEP_YAML (a single run does not "
                              "use Ray)")
        if config_path is not None or resume is not None:
            raise ConfigError("--sweep takes its base config from the sweep file (base:) "
                              "and resumes by running it again; drop --config / --resume")
        if dry_run:
            _, sweep_dir, trials = sweep.prepare_sweep(sweep_path, overrides)
            for trial in trials:
                print(f"{sweep_dir / trial.name}: {' '.join(trial.overrides)}")
            print(f"sweep OK; {len(trials)} trials")
            return 0
        result = sweep.run_sweep(sweep_path, address, command, overrides)
    except KeyboardInterrupt:
        print(f"interrupted; trials keep their checkpoints: run `python train.py --sweep "
              f"{sweep_path}` again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.failed:
        print(f"error: {len(result.failed)} trials failed: {sorted(result.failed)}; run the "
              "same command again to retry them", file=sys.stderr)
        return EXIT_TRIALS_FAILED
    print(f"done: {len(result.rows)} trials ({len(result.skipped)} already finished); "
          f"sweep folder {result.sweep_dir}")
    return 0
