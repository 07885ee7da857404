"""Run a sweep file's trials on Ray Tune, each as an ordinary run folder; resume; summarise.

``python train.py --sweep configs/sweep/NAME.yaml [--address ADDR]`` calls `run_sweep`:

1. the trials are expanded and checked (`agents.sweeps.config.expand_trials`; each trial's
   profile and trace files too, with `agents.training.ppo.prepare`), before Ray starts;
2. Ray is reached: a local Ray (``num_cpus`` of the sweep file) by default, or the running
   cluster at ``--address`` / ``RAY_ADDRESS``, checked to answer first;
3. the trials not yet finished run as Ray Tune trials with the file's ``resources``; each
   one is `agents.training.ppo.train` into ``<output_dir>/<sweep>/<trial>/``, exactly what
   ``train.py`` writes. A trial folder that already holds a finished run is not run again;
   one that holds a checkpoint continues from it (as ``train.py --resume`` would);
4. the sweep folder gets ``sweep.json`` (the trials and their swept values) and
   ``summary.csv``; the same table is printed.

Ray Tune's own files go to ``<sweep folder>/_tune/``. On a cluster, the sweep folder (and
the profile and trace files) must be on a filesystem every node shares, and every node
needs this package installed (docs/live.md does not cover it; Ray's cluster docs do).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agents.runs.train_config import check_resume_changes, load_train_config
from agents.sweeps.config import (
    SweepConfig,
    Trial,
    base_output_dir,
    expand_trials,
    load_sweep_config,
    sweep_name,
)
from agents.sweeps.dirs import SWEEP_FILE
from agents.sweeps.summary import format_table, summary_rows, trial_metrics, write_summary
from envs.config.errors import ConfigError, IpaEnergyError

__all__ = ["SweepResult", "check_ray_address", "prepare_sweep", "run_sweep"]

RAY_PROBE_TIMEOUT_S = 3.0
LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2
"""Object store of a local Ray (assumed ample: trials pass only their final metrics)."""
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SweepResult:
    """How a sweep ended."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    failed: dict[str, str]
    skipped: list[str]


def trial_state(trial: Trial) -> str:
    """``finished``, ``partial`` (a folder, not finished) or ``new``.

    Args:
        trial: One expanded trial of the sweep.

    Returns:
        ``finished`` when its folder holds a final model and a summary at the trial's
        total timesteps, ``partial`` for any other folder, ``new`` without one.
    """
    run_dir = Path(trial.config.run.output_dir) / trial.name
    if not run_dir.is_dir():
        return "new"
    summary = run_dir / "summary.json"
    if summary.is_file() and (run_dir / "model.zip").is_file():
        steps = json.loads(summary.read_text()).get("num_timesteps", 0)
        if steps >= trial.config.run.total_timesteps:
            return "finished"
    return "partial"


def check_ray_address(address: str, timeout_s: float = RAY_PROBE_TIMEOUT_S) -> None:
    """Fail fast when a Ray address (``host:port`` or ``ray://host:port``) does not answer.

    ``auto`` is left to ``ray.init`` (it finds a cluster started on this machine).

    Args:
        address: The Ray address (``--address`` or ``RAY_ADDRESS``).
        timeout_s: How long to wait for the TCP connection.

    Raises:
        ConfigError: No TCP connection to the address within ``timeout_s``.
    """
    if address == "auto":
        return
    url = urlparse(address if "://" in address else f"gcs://{address}")
    try:
        host, port = url.hostname, url.port
    except ValueError:
        host = port = None
    if not host:
        raise ConfigError(f"Ray address {address!r} is not host:port, ray://host:port or "
                          "auto")
    port = port or (10001 if url.scheme == "ray" else 6379)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(f"Ray address {address} does not answer ({err}); start the "
                          "cluster (`ray start --head`) or check --address / RAY_ADDRESS; "
                          "without either, a local Ray is started") from None


def _amdsmi_shim() -> str | None:
    """The stand-in's folder where ``import amdsmi`` fails with more than ImportError.

    Also makes this process's ``import amdsmi`` raise ImportError (see agents/sweeps/_shims).
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its failure
            import amdsmi  # noqa: F401 - only whether it imports
    except ImportError:
        return None
    except Exception:  # noqa: BLE001 - amdsmi 7.0.2 raises KeyError without its library
        sys.modules["amdsmi"] = None  # type: ignore[assignment]
        return str(Path(__file__).resolve().parent / "_shims")
    return None


def _import_ray() -> Any:
    """``import ray``, safe from a broken amdsmi (see `_amdsmi_shim`)."""
    shim = _amdsmi_shim()
    if shim is not None:
        # Ray's own processes (GCS, raylet, workers) inherit this environment
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if shim not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [shim, *paths]))
    import ray

    return ray


def _init_ray(sweep: SweepConfig, address: str | None) -> None:
    ray = _import_ray()

    if address is not None:
        check_ray_address(address)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(f"cannot join the Ray cluster at {address}: {err}; check "
                              "--address / RAY_ADDRESS") from None
        return
    # local Ray: its workers import this package from the checkout
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO_ROOT)]))
    ray.init(num_cpus=sweep.num_cpus or os.cpu_count(), include_dashboard=False,
             object_store_memory=LOCAL_OBJECT_STORE_BYTES,
             runtime_env={"env_vars": {"PYTHONPATH": path}}, log_to_driver=True)


def _run_trial(params: dict[str, Any], trials: dict[str, Trial], cwd: str,
               command: str) -> None:
    """The Ray Tune trainable: one trial's PPO run into its run folder."""
    from ray import tune

    from agents.training import ppo

    if not os.path.isdir(cwd):
        raise ConfigError(f"the sweep's working directory {cwd} does not exist on this Ray "
                          "node; run sweeps on a cluster from a filesystem all nodes share")
    os.chdir(cwd)
    trial = trials[params["trial"]]
    run_dir = Path(trial.config.run.output_dir) / trial.name
    result = ppo.train(trial.config, run_dir, command, resume=run_dir.is_dir())
    if result.interrupted:
        raise RuntimeError(f"trial {trial.name} was interrupted at step "
                           f"{result.num_timesteps}; run the sweep again to continue it")
    tune.report(trial_metrics(run_dir))


def prepare_sweep(path: str | Path, overrides: Sequence[str] = ()
                  ) -> tuple[SweepConfig, Path, list[Trial]]:
    """Load the sweep file, expand and check every trial; nothing is written.

    Args:
        path: The sweep YAML.
        overrides: ``key=value`` applied to every trial after the file's ``overrides``
            (e.g. a smaller ``run.total_timesteps``); a swept key cannot be overridden.

    Returns:
        The sweep config (with ``overrides`` appended), the sweep folder and its trials.

    Raises:
        ConfigError, ProfileError, TraceError: A bad key, value or file, naming the trial;
            or a trial folder whose saved config the sweep would change.
    """
    from agents.training import ppo

    sweep = load_sweep_config(path)
    swept = set(sweep.grid) | set(sweep.random)
    clash = sorted({o.split("=", 1)[0].strip() for o in overrides} & swept)
    if clash:
        raise ConfigError(f"override of {clash} clashes with the sweep, which sets them per "
                          f"trial; change grid: / random: in {path} instead")
    sweep = replace(sweep, overrides=(*sweep.overrides, *overrides))
    sweep_dir = base_output_dir(sweep) / sweep_name(sweep, path)
    trials = expand_trials(sweep, sweep_dir)
    recorded = sweep_dir / SWEEP_FILE
    if recorded.is_file():
        before = {t["name"]: t["params"] for t in json.loads(recorded.read_text())["trials"]}
        now = {t.name: _jsonable(t.params) for t in trials}
        if before != now:
            raise ConfigError(f"{sweep_dir} holds a sweep with other trials ({sorted(before)}); "
                              "set another name: in the sweep file, or delete the folder")
    for trial in trials:
        run_dir = sweep_dir / trial.name
        try:
            if (run_dir / "config.yaml").is_file():
                check_resume_changes(load_train_config(run_dir / "config.yaml"), trial.config)
            ppo.prepare(trial.config)
        except IpaEnergyError as err:
            raise type(err)(f"sweep trial {trial.name}: {err}") from None
    return sweep, sweep_dir, trials


def run_sweep(path: str | Path, address: str | None = None, command: str = "",
              overrides: Sequence[str] = (), out: Any = None) -> SweepResult:
    """Run (or resume) the sweep in file ``path`` and print its summary table.

    Args:
        path: The sweep YAML.
        address: A running Ray cluster (``host:port``, ``ray://host:port``, ``auto``);
            None: ``RAY_ADDRESS`` if set, else a local Ray.
        command: The command line, recorded in every trial's ``command.txt``.
        overrides: ``key=value`` for every trial (see `prepare_sweep`).
        out: Where the table is printed (default: stdout).

    Returns:
        The summary rows, the trials that failed (name -> error) and those skipped as
        already finished.

    Raises:
        ConfigError: Bad sweep file or trial, or a Ray address that does not answer;
            raised before any trial starts.
    """
    sweep, sweep_dir, trials = prepare_sweep(path, overrides)
    address = address or os.environ.get("RAY_ADDRESS") or None
    pending = [t for t in trials if trial_state(t) != "finished"]
    skipped = [t.name for t in trials if t not in pending]
    failed: dict[str, str] = {}
    if pending:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        _write_sweep_file(sweep_dir, path, trials, command)
        failed = _tune(sweep, sweep_dir, pending, address, command)
    rows = summary_rows(sweep_dir, trials, failed)
    write_summary(sweep_dir, rows)
    print(format_table(rows), file=out or sys.stdout)
    return SweepResult(sweep_dir, rows, failed, skipped)


def _tune(sweep: SweepConfig, sweep_dir: Path, pending: list[Trial],
          address: str | None, command: str) -> dict[str, str]:
    """Run ``pending`` trials on Ray Tune; returns the failed ones (name -> error)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray = _import_ray()
    from ray import tune

    started = not ray.is_initialized()
    if started:
        _init_ray(sweep, address)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(_run_trial, trials={t.name: t for t in pending},
                                 cwd=os.getcwd(), command=command),
            {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu})
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([t.name for t in pending])},
            tune_config=tune.TuneConfig(max_concurrent_trials=sweep.max_concurrent_trials),
            run_config=tune.RunConfig(
                name=time.strftime("%Y%m%d-%H%M%S"),
                storage_path=str((sweep_dir / "_tune").resolve()), verbose=0,
                failure_config=tune.FailureConfig(max_failures=0)))
        grid = tuner.fit()
        failed = {}
        for result in grid:
            if result.error is not None:
                name = result.config["trial"] if result.config else "?"
                failed[name] = str(result.error).strip().splitlines()[-1][:300]
        return failed
    finally:
        if started:
            ray.shutdown()


def _write_sweep_file(sweep_dir: Path, path: str | Path, trials: list[Trial],
                      command: str) -> None:
    """``sweep.json``: the sweep file, every command that ran it, each trial's values."""
    target = sweep_dir / SWEEP_FILE
    doc = json.loads(target.read_text()) if target.is_file() else {
        "sweep_file": str(path), "commands": [],
        "trials": [{"name": t.name, "params": _jsonable(t.params),
                    "overrides": list(t.overrides)} for t in trials]}
    doc["commands"].append(command)
    target.write_text(json.dumps(doc, indent=2) + "\n")


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))
