"""Sweep files: a grid and/or random search over `TrainConfig` keys, expanded into trials.

A sweep file (``configs/sweep/*.yaml``) maps onto `SweepConfig` through the strict loader::

    name: seeds_x_energy          # trials go to <base run.output_dir>/<name>/ (default: stem)
    base: configs/train/video_ppo.yaml   # the TrainConfig every trial starts from
    overrides: [tracking.mode=disabled]  # applied to every trial
    grid:                         # every combination of these values
      run.seed: [0, 1, 2]
      env.reward.energy: [0.5, 1.0, 2.0]
    random:                       # num_samples draws, each combined with every grid point
      agent.learning_rate: {loguniform: [1.0e-4, 1.0e-3]}
    num_samples: 1
    seed: 0                       # seeds the random draws: the same file, the same trials
    resources: {cpu: 1, gpu: 0}   # Ray resources per trial
    max_concurrent_trials: null   # null: as many as the resources allow

The trials are drawn here, before Ray starts, and each one's overrides go through
`agents.runs.train_config.load_train_config`, so a key that is not a config field (or a value
of the wrong type) is reported, naming the trial, before any trial starts. Drawing them
here, with the file's ``seed``, is also what makes a sweep resumable: running the same
file again yields the same trial names and configs.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.runs.train_config import TrainConfig, load_train_config, with_run
from envs.config.errors import ConfigError
from envs.config.loader import load_config, to_dict

__all__ = ["RandomParam", "Resources", "SweepConfig", "Trial", "expand_trials",
           "load_sweep_config"]

RESERVED_KEYS = frozenset({"run.name", "run.output_dir"})
"""Keys the sweep sets itself (each trial's folder under the sweep folder)."""


@dataclass(frozen=True)
class RandomParam:
    """How one key of a random search is drawn (exactly one attribute set).

    Attributes:
        choice: One of these values, uniformly.
        uniform: A float uniformly in ``[low, high)``.
        loguniform: A float whose log is uniform in ``[log low, log high)`` (low > 0).
        randint: An integer uniformly in ``[low, high]`` (both ends included).
    """

    choice: tuple[Any, ...] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("choice", "uniform", "loguniform", "randint")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError(f"give exactly one of choice, uniform, loguniform, randint; "
                              f"got {given or 'none'}")
        if self.choice is not None and not self.choice:
            raise ConfigError("choice must list at least one value")
        for name in ("uniform", "loguniform", "randint"):
            bounds = getattr(self, name)
            if bounds is not None and not bounds[0] <= bounds[1]:
                raise ConfigError(f"{name}: low {bounds[0]} must not exceed high {bounds[1]}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ConfigError(f"loguniform needs low > 0, got {self.loguniform[0]}")

    def draw(self, rng: np.random.Generator) -> Any:
        """One value (plain Python types, so it renders as a YAML override).

        Args:
            rng: The sweep's generator (seeded by ``SweepConfig.seed``).

        Returns:
            A listed choice, a float (uniform or log-uniform) or an int (randint, both
            bounds included).
        """
        if self.choice is not None:
            return self.choice[int(rng.integers(len(self.choice)))]
        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        if self.loguniform is not None:
            low, high = self.loguniform
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        assert self.randint is not None
        return int(rng.integers(self.randint[0], self.randint[1] + 1))


@dataclass(frozen=True)
class Resources:
    """Ray resources reserved for each trial (a trial is one process, one PPO run).

    Attributes:
        cpu: CPUs per trial (set ``run.torch_threads`` to match in ``overrides``).
        gpu: GPUs per trial (fractions share a GPU; set ``agent.device=cuda`` too).
    """

    cpu: float = 1.0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        if self.cpu <= 0 or self.gpu < 0:
            raise ConfigError(f"resources need cpu > 0 and gpu >= 0, got {self}")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep file (see the module docstring for an example).

    Attributes:
        name: Sweep folder name under the base config's ``run.output_dir`` (None: the
            sweep file's stem).
        base: TrainConfig YAML every trial starts from (None: the embedded defaults);
            relative paths are relative to the working directory, like ``--config``.
        overrides: ``key=value`` overrides applied to every trial, before the swept keys.
        grid: Key -> values; every combination is a trial.
        random: Key -> how to draw it; ``num_samples`` draws per grid point.
        num_samples: Repetitions of the grid (each with fresh random draws).
        seed: Seed of the random draws.
        resources: Ray resources per trial.
        max_concurrent_trials: At most this many trials at once (None: resources decide).
        num_cpus: CPUs of a local Ray (None: all of this machine's); ignored with
            ``--address``.
    """

    name: str | None = None
    base: str | None = None
    overrides: tuple[str, ...] = ()
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    random: dict[str, RandomParam] = field(default_factory=dict)
    num_samples: int = 1
    seed: int = 0
    resources: Resources = field(default_factory=Resources)
    max_concurrent_trials: int | None = None
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise ConfigError("max_concurrent_trials must be >= 1 or null")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ConfigError("num_cpus must be >= 1 or null")
        if self.name is not None and not _plain_name(self.name):
            raise ConfigError(f"name {self.name!r} must be a plain folder name")
        both = sorted(set(self.grid) & set(self.random))
        if both:
            raise ConfigError(f"keys {both} are in both grid and random; keep one")
        for key, values in self.grid.items():
            if not values:
                raise ConfigError(f"grid.{key} lists no values")
        for key in [*self.grid, *self.random]:
            if key in RESERVED_KEYS:
                raise ConfigError(f"{key} cannot be swept: the sweep names each trial's "
                                  "folder; set name: (the sweep folder) instead")


@dataclass(frozen=True)
class Trial:
    """One trial: its run folder name, its swept values and its resolved config."""

    name: str
    params: dict[str, Any]
    overrides: tuple[str, ...]
    config: TrainConfig


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Load a sweep file strictly (unknown keys, wrong types: `ConfigError`).

    Args:
        path: The sweep YAML.

    Returns:
        The checked `SweepConfig`.

    Raises:
        ConfigError: An unknown key, a wrong type or a failed check.
    """
    return load_config(SweepConfig, path)


def sweep_name(sweep: SweepConfig, path: str | Path) -> str:
    """The sweep folder's name: ``name``, or the sweep file's stem.

    Args:
        sweep: The sweep file.
        path: Its path.

    Returns:
        The folder name.
    """
    return sweep.name or Path(path).stem


def expand_trials(sweep: SweepConfig, sweep_dir: Path) -> list[Trial]:
    """Every trial of ``sweep``, configs resolved and checked, run folders under ``sweep_dir``.

    Args:
        sweep: The sweep file.
        sweep_dir: The sweep folder (each trial's ``run.output_dir``). Trials run without
            a progress bar (``run.progress_bar=false``): many would share one terminal.

    Returns:
        The trials in a fixed order: grid points (last key fastest) x ``num_samples``.

    Raises:
        ConfigError: A swept or fixed key is not a config field, a value has the wrong
            type, or a trial's config fails its checks; the message names the trial.
    """
    keys = list(sweep.grid)
    points = list(itertools.product(*(sweep.grid[k] for k in keys))) or [()]
    rng = np.random.default_rng(sweep.seed)
    trials = []
    for _ in range(sweep.num_samples):
        for point in points:
            params: dict[str, Any] = dict(zip(keys, point, strict=True))
            params.update({k: p.draw(rng) for k, p in sweep.random.items()})
            index = len(trials)
            name = trial_name(index, params)
            swept = tuple(f"{k}={_yaml_value(v)}" for k, v in params.items())
            overrides = (*sweep.overrides, *swept)
            where = f"sweep trial {name} ({', '.join(swept) or 'no swept keys'})"
            try:
                cfg = load_train_config(sweep.base, overrides)
            except ConfigError as err:
                raise ConfigError(f"{where}: {err}") from None
            cfg = with_run(cfg, name=name, output_dir=str(sweep_dir), progress_bar=False)
            trials.append(Trial(name, params, overrides, cfg))
    return trials


def trial_name(index: int, params: dict[str, Any]) -> str:
    """``t003_seed=1_energy=0.5``: index, then each swept key's last part and value.

    Args:
        index: The trial's position in the sweep.
        params: Its swept key -> value.

    Returns:
        A folder name (other characters replaced by ``-``; at most 96 characters).
    """
    parts = [f"t{index:03d}"]
    for key, value in params.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key.rsplit('.', 1)[-1]}={text}")
    name = re.sub(r"[^A-Za-z0-9_.=+-]+", "-", "_".join(parts))
    return name[:96]


def base_output_dir(sweep: SweepConfig) -> Path:
    """The base config's ``run.output_dir`` (the sweep folder's parent).

    Args:
        sweep: The sweep file (its ``base`` and ``overrides``).

    Returns:
        The folder.

    Raises:
        ConfigError: The base config or an override is invalid.
    """
    return Path(load_train_config(sweep.base, sweep.overrides).run.output_dir)


def _yaml_value(value: Any) -> str:
    """A value as override text the YAML reader reads back unchanged."""
    import yaml

    if isinstance(value, float):
        return repr(value)
    return yaml.safe_dump(to_dict(value), default_flow_style=True, width=10_000).strip() \
        .removesuffix("...").strip()


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")

