"""Evaluation, tuning and sizing windows share the configured windows' scale."""

from __future__ import annotations

import pytest

from agents.evaluation.config import EvalConfig, WindowSpec
from agents.evaluation.windows import training_peak, tuning_windows
from envs.config.errors import ConfigError


def config(*scales: float) -> EvalConfig:
    return EvalConfig(windows=tuple(WindowSpec(f"w{i}", "bursty", 1000, scale=s)
                                    for i, s in enumerate(scales)))


def test_sizing_and_tuning_follow_the_windows_scale() -> None:
    full, quarter = config(1.0, 1.0), config(0.25, 0.25)
    assert training_peak(quarter, None).rps == pytest.approx(0.25 * training_peak(full, None).rps)
    for a, b in zip(tuning_windows(full, None), tuning_windows(quarter, None), strict=True):
        assert b.rates.sum() == pytest.approx(0.25 * a.rates.sum())


def test_windows_of_different_scales_are_refused() -> None:
    with pytest.raises(ConfigError, match="different scales"):
        training_peak(config(1.0, 0.25), None)
