"""Tests of envs.workload.traces (trace loading), envs.workload.synthetic (synthetic patterns) and
envs.workload.day_split (splits and windows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs.config.errors import ConfigError, TraceError
from envs.workload.day_split import DAY_S, TraceSplit, sample_window, split_by_day, windows
from envs.workload.synthetic import PATTERNS, synthetic_trace
from envs.workload.traces import load_trace

TWITTER_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "twitter"


def _write(tmp_path: Path, text: str, name: str = "trace.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- loading


def test_load_ipa_one_line_format(tmp_path: Path) -> None:
    path = _write(tmp_path, "1 2 3 40 0 7\n")
    trace = load_trace(path)
    assert trace.dtype == np.float64
    np.testing.assert_array_equal(trace, [1, 2, 3, 40, 0, 7])


def test_load_one_value_a_line_and_mixed_whitespace(tmp_path: Path) -> None:
    path = _write(tmp_path, "5\n6.5\n\n  7\t8\r\n9\n")
    np.testing.assert_array_equal(load_trace(path), [5, 6.5, 7, 8, 9])


def test_load_accepts_str_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "3\n4\n")
    np.testing.assert_array_equal(load_trace(str(path)), [3, 4])


def test_damping_divides_and_floors_like_ipa(tmp_path: Path) -> None:
    path = _write(tmp_path, "0 7 8 15 16 63 388 12.9\n")
    np.testing.assert_array_equal(load_trace(path, damping=8), [0, 0, 1, 1, 2, 7, 48, 1])


def test_no_damping_keeps_floats(tmp_path: Path) -> None:
    path = _write(tmp_path, "1.5 2.25\n")
    np.testing.assert_array_equal(load_trace(path), [1.5, 2.25])


def test_start_end_window(tmp_path: Path) -> None:
    path = _write(tmp_path, " ".join(str(i) for i in range(10)))
    np.testing.assert_array_equal(load_trace(path, start=2, end=5), [2, 3, 4])
    np.testing.assert_array_equal(load_trace(path, start=7), [7, 8, 9])
    np.testing.assert_array_equal(load_trace(path, end=2), [0, 1])
    np.testing.assert_array_equal(load_trace(path, start=8, end=100), [8, 9])
    np.testing.assert_array_equal(load_trace(path, damping=2, start=4, end=6), [2, 2])


@pytest.mark.parametrize(
    ("text", "line", "token"),
    [
        ("1 2 3\n4 nan 6\n", 2, "nan"),
        ("1\n2\ninf\n", 3, "inf"),
        ("1\n-3\n", 2, "-3"),
        ("1 2 abc 4", 1, "abc"),
        ("1\n2\n\n3,4\n", 4, "3,4"),
        ("5\n6\nNaN\nfoo\n", 3, "NaN"),
    ],
)
def test_bad_tokens_raise_with_file_line_and_token(
    tmp_path: Path, text: str, line: int, token: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        load_trace(path)
    message = str(info.value)
    assert str(path) in message
    assert f"line {line}" in message
    assert repr(token) in message


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_file_raises(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TraceError, match=r"line 1: file is empty"):
        load_trace(path)


def test_empty_window_raises(tmp_path: Path) -> None:
    path = _write(tmp_path, "1 2 3")
    with pytest.raises(TraceError, match=r"holds 3 seconds"):
        load_trace(path, start=3)


def test_missing_file_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(TraceError, match=r"does not exist"):
        load_trace(missing)


def test_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"is a directory"):
        load_trace(tmp_path)


def test_non_utf8_raises(tmp_path: Path) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(b"1 2 \xff\xfe 3")
    with pytest.raises(TraceError, match=r"not UTF-8"):
        load_trace(path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"damping": 0},
        {"damping": -8},
        {"damping": float("nan")},
        {"start": -1},
        {"end": -2},
        {"start": 5, "end": 5},
    ],
)
def test_bad_load_arguments_raise_config_error(tmp_path: Path, kwargs: dict) -> None:
    path = _write(tmp_path, "1 2 3 4 5 6 7 8")
    with pytest.raises(ConfigError):
        load_trace(path, **kwargs)


def test_large_one_line_trace_parses(tmp_path: Path) -> None:
    values = np.random.default_rng(0).integers(0, 389, size=200_000)
    path = _write(tmp_path, " ".join(map(str, values.tolist())))
    np.testing.assert_array_equal(load_trace(path), values)


def test_ipa_bursty_window_stats() -> None:
    path = TWITTER_DIR / "window_bursty_damped8.txt"
    if not path.exists():
        pytest.skip(f"reference window {path} is absent (shared data not mounted)")
    trace = load_trace(path)
    assert trace.size == 1200
    assert trace.min() == 3
    assert trace.max() == 34
    assert trace.sum() == 14_437


# --------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("pattern", PATTERNS)
def test_synthetic_deterministic_integer_non_negative(pattern: str) -> None:
    a = synthetic_trace(pattern, 1200, seed=3)
    b = synthetic_trace(pattern, 1200, seed=3)
    c = synthetic_trace(pattern, 1200, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (1200,)
    assert a.dtype == np.float64
    assert (a >= 0).all()
    np.testing.assert_array_equal(a, np.rint(a))


@pytest.mark.parametrize(
    ("pattern", "low", "high", "mean", "tol"),
    [
        ("steady_low", 3, 8, 5.0, 0.3),
        ("steady_high", 23, 34, 29.0, 0.5),
        ("fluctuating", 3, 34, 16.5, 1.0),
        ("bursty", 3, 34, 12.0, 1.5),
    ],
)
def test_synthetic_ranges_and_means_match_ipa_windows(
    pattern: str, low: float, high: float, mean: float, tol: float
) -> None:
    trace = synthetic_trace(pattern, 12_000, seed=0)
    assert trace.min() >= low
    assert trace.max() <= high
    assert trace.max() - trace.min() >= 0.6 * (high - low)
    assert abs(trace.mean() - mean) <= tol


def test_fluctuating_swings_slowly() -> None:
    trace = synthetic_trace("fluctuating", 1200, seed=1)
    minute_means = trace.reshape(-1, 60).mean(axis=1)
    assert minute_means.max() - minute_means.min() > 15
    assert np.abs(np.diff(trace)).mean() < 3


def test_bursty_has_bursts_and_quiet_periods() -> None:
    trace = synthetic_trace("bursty", 1200, seed=2)
    assert (trace >= 20).mean() > 0.1
    assert (trace <= 8).mean() > 0.4


def test_synthetic_scale() -> None:
    base = synthetic_trace("steady_high", 600, seed=5)
    doubled = synthetic_trace("steady_high", 600, seed=5, scale=2.0)
    np.testing.assert_array_equal(doubled, base * 2)
    halved = synthetic_trace("steady_high", 600, seed=5, scale=0.5)
    np.testing.assert_array_equal(halved, base * 0.5)  # fractions kept (carried by the
    assert not np.array_equal(halved, np.rint(halved))  # request simulator)


def test_unknown_pattern_suggests() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'bursty'"):
        synthetic_trace("burst", 100, seed=0)


@pytest.mark.parametrize(("duration", "scale"), [(0, 1.0), (-5, 1.0), (10, 0.0), (10, -1.0)])
def test_bad_synthetic_arguments(duration: int, scale: float) -> None:
    with pytest.raises(ConfigError):
        synthetic_trace("steady_low", duration, seed=0, scale=scale)


# --------------------------------------------------------------------------- splitting


def test_split_by_day_disjoint_and_ordered() -> None:
    day = 100
    trace = np.arange(7 * day + 30, dtype=np.float64)
    split = split_by_day(trace, train_days=4, val_days=1, test_days=2, day_s=day)
    assert isinstance(split, TraceSplit)
    assert split.bounds == {"train": (0, 400), "val": (400, 500), "test": (500, 700)}
    parts = [split.train, split.val, split.test]
    seen = np.concatenate(parts)
    assert np.unique(seen).size == seen.size  # no second in two parts
    days = [set((p // day).astype(int).tolist()) for p in parts]
    assert days[0].isdisjoint(days[1]) and days[0].isdisjoint(days[2])
    assert days[1].isdisjoint(days[2])
    assert split.train.max() < split.val.min() < split.test.min()


def test_split_rest_goes_to_test_and_zero_val() -> None:
    trace = np.arange(350, dtype=np.float64)
    split = split_by_day(trace, train_days=2, val_days=0, day_s=100)
    assert split.val.size == 0
    assert split.bounds["test"] == (200, 350)
    np.testing.assert_array_equal(split.test, np.arange(200, 350))


def test_split_default_day_length() -> None:
    trace = np.zeros(3 * DAY_S)
    split = split_by_day(trace, 1, 1, 1)
    assert split.train.size == split.val.size == split.test.size == DAY_S


def test_split_parts_are_copies() -> None:
    trace = np.arange(300, dtype=np.float64)
    split = split_by_day(trace, 1, 1, 1, day_s=100)
    split.train[0] = -1
    assert trace[0] == 0


@pytest.mark.parametrize(
    ("train", "val", "test"), [(3, 1, 1), (0, 1, 1), (1, -1, 1), (1, 1, 0), (3, 0, None)]
)
def test_split_rejects_bad_sizes(train: int, val: int, test: int | None) -> None:
    with pytest.raises(ConfigError):
        split_by_day(np.zeros(300), train, val, test, day_s=100)


def test_sample_window_seeded_and_in_trace() -> None:
    trace = np.arange(1000, dtype=np.float64)
    a = sample_window(trace, 50, np.random.default_rng(7))
    b = sample_window(trace, 50, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.size == 50
    np.testing.assert_array_equal(np.diff(a), np.ones(49))
    np.testing.assert_array_equal(sample_window(trace, 1000, np.random.default_rng(0)), trace)
    with pytest.raises(ConfigError):
        sample_window(trace, 1001, np.random.default_rng(0))


def test_windows_stride() -> None:
    trace = np.arange(10, dtype=np.float64)
    got = [w.tolist() for w in windows(trace, 4, 3)]
    assert got == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert len(list(windows(trace, 4))) == 2
    with pytest.raises(ConfigError):
        windows(trace, 0)
    with pytest.raises(ConfigError):
        windows(trace, 4, 0)


def test_mixed_pattern_cycles_through_the_four() -> None:
    from envs.workload.synthetic import MIXED_SEGMENT_S

    mixed = synthetic_trace("mixed", 4 * MIXED_SEGMENT_S + 10, seed=3)
    assert mixed.shape == (4 * MIXED_SEGMENT_S + 10,)
    means = mixed[: 4 * MIXED_SEGMENT_S].reshape(4, MIXED_SEGMENT_S).mean(axis=1)
    assert means[0] < 9 and means[1] > 22  # steady_low, then steady_high
    np.testing.assert_array_equal(mixed, synthetic_trace("mixed", 4 * MIXED_SEGMENT_S + 10, 3))


def test_arrival_counts_carry_fractions_across_seconds_and_calls() -> None:
    from envs.workload.traces import arrival_counts

    counts, carry = arrival_counts(np.full(5, 0.4))
    assert counts.tolist() == [0, 0, 1, 0, 1] and carry == pytest.approx(0.0, abs=1e-9)
    first, carry = arrival_counts(np.array([0.5, 0.25]))
    second, carry = arrival_counts(np.array([0.25, 3.0]), carry)
    assert first.tolist() == [0, 0] and second.tolist() == [1, 3] and carry == pytest.approx(0)
