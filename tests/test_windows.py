"""Evaluation, tuning and sizing windows share the configured windows' scale; the report
says which scale was applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.evaluation.config import DaySplit, EvalConfig, WindowSpec
from agents.evaluation.run import overlap_note, workload_table
from agents.evaluation.windows import shared_seconds, training_peak, tuning_windows
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


def trace_config(trace_scale: float, window_scale: float = 1.0) -> EvalConfig:
    return EvalConfig(trace_damping=1.0, trace_scale=trace_scale,
                      days=DaySplit(train_days=(), val_days=()),
                      windows=(WindowSpec("w", segments=((200, 260),), scale=window_scale),))


def test_the_workload_table_says_the_scale_that_was_applied(tmp_path: Path) -> None:
    """The trace's 0.031 reached the rates but the table said "scale 1" (issue 25);
    and rates below 1 req/s were printed as 0 or 1."""
    trace = tmp_path / "trace.txt"
    trace.write_text("\n".join(["20", "30"] * 150))  # 25 req/s on average
    table = workload_table(trace_config(0.031), trace)
    row = table.splitlines()[2]
    assert "scale 0.031," in row and "scale 1," not in row
    assert row.endswith("| 60 | 0.775 | 0.93 |")  # 25 x 0.031 and 30 x 0.031
    both = workload_table(trace_config(0.031, 0.5), trace).splitlines()[2]
    assert "scale 0.0155 (trace 0.031 x window 0.5)" in both
    assert "scale 1," in workload_table(trace_config(1.0), trace).splitlines()[2]


def test_ipas_windows_are_marked_as_sharing_trace_seconds() -> None:
    """IPA's four windows overlap: fluctuating's first 600 s lie inside bursty, and
    steady_high plays one segment twice (issue 25)."""
    import yaml

    from envs.config.loader import from_dict

    root = Path(__file__).resolve().parents[1]
    config = from_dict(EvalConfig, yaml.safe_load(
        (root / "configs" / "eval" / "ipa_windows.yaml").read_text()))
    assert shared_seconds(config) == ["steady_high plays some trace seconds twice",
                                      "bursty and fluctuating share trace seconds"]
    assert shared_seconds(trace_config(1.0)) == []
    assert "not independent" in overlap_note(config)[0]
