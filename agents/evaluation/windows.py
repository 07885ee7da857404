"""Evaluation and tuning windows: each workload with the history that preceded it.

Trace windows take the seconds before their first segment as warm-up history; synthetic
ones generate it. `training_peak` is the rate that sizes the static baselines and RIM,
taken from training data, never from the window evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from agents.evaluation.config import EvalConfig, WindowSpec
from envs.config.errors import ConfigError
from envs.env_config import EnvConfig
from envs.pipeline_env import PipelineEnv
from envs.workload.day_split import sample_heldout_starts
from envs.workload.synthetic import MIXED_SEGMENT_S, synthetic_trace
from envs.workload.traces import load_trace

__all__ = [
    "Peak",
    "Window",
    "evaluation_windows",
    "full_trace",
    "heldout_windows",
    "training_peak",
    "tuning_windows",
    "window_env",
    "window_rates",
]


@dataclass(frozen=True)
class Window:
    """One evaluation (or tuning) workload and the history before it.

    Attributes:
        name: Name in the report.
        warmup: Per-second rates before the window (never played; the predictor and every
            policy start from them).
        rates: The window's per-second rates.
        source: Where it comes from, for the report's workload table.
    """

    name: str
    warmup: np.ndarray
    rates: np.ndarray
    source: str


@dataclass(frozen=True)
class Peak:
    """The rate that sizes the static baselines and RIM, and where it comes from."""

    rps: float
    source: str


@lru_cache(maxsize=2)
def full_trace(path: str, damping: float, scale: float = 1.0) -> np.ndarray:
    """The whole ``--trace`` file, damped (IPA's integer floor), then multiplied by
    ``scale`` (`EvalConfig.trace_scale`, fractions kept); loaded once per process.

    Args:
        path: The trace file.
        damping: IPA's damping factor (see `load_trace`).
        scale: Multiplies every rate after damping.

    Returns:
        One rate (requests/s) per second of the trace.

    Raises:
        TraceError: The file is missing, unreadable, empty or holds a bad value.
    """
    rates = load_trace(path, damping)
    return rates * scale if scale != 1.0 else rates


def _scaled(rates: np.ndarray, scale: float) -> np.ndarray:
    return rates * scale if scale != 1.0 else rates


def shared_seconds(config: EvalConfig) -> list[str]:
    """Where the config's trace windows are not independent: pairs of windows that play
    the same trace seconds, and windows that play a second of their own twice.

    Args:
        config: The evaluation config.

    Returns:
        One phrase per finding (empty when every trace second is played once).
    """
    played = {w.name: [(a, b) for a, b in w.segments] for w in config.windows if w.segments}
    found = []
    for name, segs in played.items():
        if any(a1 < b2 and a2 < b1 for i, (a1, b1) in enumerate(segs)
               for a2, b2 in segs[i + 1:]):
            found.append(f"{name} plays some trace seconds twice")
    names = sorted(played)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if any(a1 < b2 and a2 < b1 for a1, b1 in played[first] for a2, b2 in played[second]):
                found.append(f"{first} and {second} share trace seconds")
    return found


def scale_text(trace_scale: float, window_scale: float) -> str:
    """The scale a trace window's rates were multiplied by: the evaluation's trace scale
    times the window's own (both named where both apply).

    Args:
        trace_scale: `EvalConfig.trace_scale`.
        window_scale: The window spec's ``scale``.
    """
    total = trace_scale * window_scale
    if trace_scale != 1.0 and window_scale != 1.0:
        return f"scale {total:g} (trace {trace_scale:g} x window {window_scale:g})"
    return f"scale {total:g}"


def window_rates(spec: WindowSpec, trace_path: Path | None, damping: float,
                 warmup_s: int, trace_scale: float = 1.0) -> Window:
    """A window of the config with its warm-up history.

    Trace windows take the ``warmup_s`` seconds before their first segment; synthetic
    ones generate ``warmup_s + window_s`` seconds of their pattern and keep the last
    ``window_s`` (the prefix is the warm-up).

    Args:
        spec: The window's spec (trace segments, or a synthetic pattern).
        trace_path: The ``--trace`` file, or None.
        damping: IPA's damping factor for the trace.
        warmup_s: Seconds of history before the window.
        trace_scale: Multiplies the trace's rates (`full_trace`).

    Returns:
        The `Window`: warm-up rates, played rates and where they come from.

    Raises:
        ConfigError: A trace window without ``--trace``, or a segment outside the trace.
    """
    if not spec.segments:
        both = synthetic_trace(spec.pattern, warmup_s + spec.window_s, spec.seed, spec.scale)
        return Window(spec.name, both[:warmup_s], both[warmup_s:],
                      f"synthetic {spec.pattern}, seed {spec.seed}, scale {spec.scale:g}, "
                      f"{warmup_s} s generated warm-up")
    if trace_path is None:
        raise ConfigError(f"window {spec.name!r} takes segments of a trace; pass --trace "
                          "with the trace file (IPA's workload.txt)")
    full = full_trace(str(trace_path), damping, trace_scale)
    for start, end in spec.segments:
        if not 0 <= start < end <= len(full):
            raise ConfigError(f"window {spec.name!r}: segment [{start}, {end}) is outside "
                              f"the trace's {len(full)} seconds")
    first = spec.segments[0][0]
    if first < warmup_s:
        raise ConfigError(f"window {spec.name!r} starts at second {first}, before "
                          f"{warmup_s} s of warm-up history; start it later")
    rates = np.concatenate([full[a:b] for a, b in spec.segments])
    return Window(spec.name, _scaled(full[first - warmup_s:first], spec.scale),
                  _scaled(rates, spec.scale),
                  f"trace {trace_path.name} seconds {[list(s) for s in spec.segments]}, "
                  f"damping {damping:g}, {scale_text(trace_scale, spec.scale)}, the "
                  f"{warmup_s} s before as warm-up")


def heldout_windows(config: EvalConfig, trace_path: Path | None) -> list[Window]:
    """The windows sampled from held-out days (`EvalConfig.heldout`).

    Args:
        config: The evaluation config.
        trace_path: The ``--trace`` file, or None.

    Returns:
        The held-out windows (none when ``heldout.windows`` is 0).

    Raises:
        ConfigError: Held-out windows without ``--trace``, or too few gap-free windows on
            the held-out days.
    """
    h = config.heldout
    if not h.windows:
        return []
    if trace_path is None:
        raise ConfigError("heldout.windows samples windows of a trace; pass --trace")
    warmup_s = config.env.workload.warmup_s
    full = full_trace(str(trace_path), config.trace_damping, config.trace_scale)
    starts = sample_heldout_starts(full, h.days, h.window_s, h.windows, h.seed, warmup_s,
                                   config.days.day_s)
    out = []
    for i, start in enumerate(starts):
        spec = WindowSpec(f"heldout_{i}", segments=((start, start + h.window_s),),
                          scale=window_scale(config))
        window = window_rates(spec, trace_path, config.trace_damping, warmup_s,
                              config.trace_scale)
        out.append(replace(window, source=f"held-out day {start // config.days.day_s} "
                                          f"(seed {h.seed}): {window.source}"))
    return out


def evaluation_windows(config: EvalConfig, trace_path: Path | None) -> list[Window]:
    """Every window the config evaluates: its own, then the held-out ones.

    Args:
        config: The evaluation config.
        trace_path: The ``--trace`` file, or None.

    Returns:
        The windows, in that order.

    Raises:
        ConfigError: See `window_rates` and `heldout_windows`.
    """
    warmup_s = config.env.workload.warmup_s
    return [window_rates(s, trace_path, config.trace_damping, warmup_s, config.trace_scale)
            for s in config.windows] + heldout_windows(config, trace_path)


def window_env(base: EnvConfig, window: Window, folder: Path) -> PipelineEnv:
    """An env whose episode is exactly ``window`` after its warm-up (saved under folder).

    Args:
        base: The env config to play the window under.
        window: The window (warm-up and played rates).
        folder: Where the window's trace file ``<name>.txt`` is written.

    Returns:
        The env (its episode: the window's rates, cut to whole intervals).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{window.name}.txt"
    path.write_text("\n".join(f"{r:.12g}" for r in np.concatenate([window.warmup,
                                                                     window.rates])) + "\n")
    seconds = len(window.rates)
    usable = seconds - seconds % base.interval_s
    workload = replace(base.workload, source="trace", trace_path=str(path), damping=1.0,
                       start_s=None, end_s=None, window_s=usable, scale=1.0,
                       warmup_s=len(window.warmup))
    return PipelineEnv(replace(base, workload=workload))


SYNTHETIC_TRAINING_S = 4 * 4 * MIXED_SEGMENT_S
"""Length of the synthetic training trace whose peak sizes the static baselines: four
cycles of the mixed pattern's four segments (assumed: every pattern's peak occurs in it)."""


def window_scale(config: EvalConfig) -> float:
    """The ``scale`` the config's windows share, which tuning, held-out and sizing use too.

    Args:
        config: The evaluation config.

    Returns:
        The windows' common scale (1 without windows).

    Raises:
        ConfigError: The windows have different scales (one sizing cannot fit them).
    """
    scales = sorted({spec.scale for spec in config.windows})
    if len(scales) > 1:
        raise ConfigError(f"windows have different scales {scales}: the baselines are tuned "
                          "and sized once per evaluation; evaluate each scale in its own run")
    return scales[0] if scales else 1.0


def training_peak(config: EvalConfig, trace_path: Path | None) -> Peak:
    """The peak rate of the training data: the ``--trace``'s training days when it holds
    them, else the synthetic training trace (all four patterns, ``tuning_seed``), at the
    windows' scale (`window_scale`), so the baselines are sized for the load they serve.

    Args:
        config: The evaluation config.
        trace_path: The ``--trace`` file, or None.

    Returns:
        The peak rate and its source.
    """
    d = config.days
    scale = window_scale(config)
    if trace_path is not None and config.uses_trace:
        full = full_trace(str(trace_path), config.trace_damping, config.trace_scale)
        if d.train_days and (max(d.train_days) + 1) * d.day_s <= len(full):
            peak = max(float(full[x * d.day_s:(x + 1) * d.day_s].max()) for x in d.train_days)
            return Peak(peak * scale, f"maximum of {trace_path.name} (damping "
                                      f"{config.trace_damping:g}, scale "
                                      f"{config.trace_scale * scale:g}) over training days "
                                      f"{list(d.train_days)}")
    rates = synthetic_trace("mixed", SYNTHETIC_TRAINING_S, config.tuning_seed, scale)
    return Peak(float(rates.max()), f"maximum of the synthetic mixed training trace (seed "
                                    f"{config.tuning_seed}, {rates.size} s, scale {scale:g})")


def tuning_windows(config: EvalConfig, trace_path: Path | None) -> list[Window]:
    """Validation windows for tuning: from the ``--trace``'s validation days when the
    config evaluates trace windows and the trace holds them, else synthetic windows.

    Args:
        config: The evaluation config.
        trace_path: The ``--trace`` file, or None.

    Returns:
        The tuning windows.
    """
    d = config.days
    warmup_s = config.env.workload.warmup_s
    scale = window_scale(config)
    if trace_path is not None and config.uses_trace:
        full = full_trace(str(trace_path), config.trace_damping, config.trace_scale)
        if d.val_days and (max(d.val_days) + 1) * d.day_s <= len(full):
            starts = sample_heldout_starts(full, d.val_days, d.tuning_window_s,
                                           d.tuning_windows, config.tuning_seed, warmup_s,
                                           d.day_s)
            return [window_rates(WindowSpec(f"val_{s}", segments=((s, s + d.tuning_window_s),),
                                            scale=scale),
                                 trace_path, config.trace_damping, warmup_s,
                                 config.trace_scale) for s in starts]
    return [window_rates(WindowSpec(f"val_{p}", p, config.tuning_seed, window_s=600,
                                    scale=scale),
                         None, 1.0, warmup_s) for p in ("bursty", "fluctuating")]
