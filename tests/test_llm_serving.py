"""An LLM replica under continuous batching: the curve's rules against hand-computed
numbers, the processor-sharing simulator against hand-computed runs and queueing theory,
and the model at saturation against ML.ENERGY's measurements (files in ../shared)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from energy.mlenergy.curves import cap_lengths, llm_configurations, llm_curve, saturation_checks
from energy.mlenergy.files import read_model_file
from envs.config.errors import ConfigError, ProfileError
from envs.model.llm_curve import CapPoint, LlmCurve, leave_one_out, merge_duplicate_caps
from envs.model.load_table import LoadTable
from envs.serving.continuous_batching import serve_replica
from envs.serving.load_table import load_table
from envs.workload.lengths import TokenLengths

V3 = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlenergy" / "v3" / "models"
# the LLM variants of the shipped GPU profiles (llm_chat_h100, chat_to_image_h100)
SHIPPED = [("meta-llama__Llama-3.1-8B-Instruct", 1), ("google__gemma-3-12b-it", 1),
           ("google__gemma-3-27b-it", 2), ("Qwen__Qwen3-30B-A3B-Instruct-2507", 1)]

TWO = (CapPoint(8, 8.0, 800.0, 400.0, 10.0, 20.0), CapPoint(32, 32.0, 1600.0, 600.0, 20.0, 40.0))


def test_between_points_linear_in_log_concurrency() -> None:
    curve = LlmCurve(TWO, idle_w=100.0)
    # n = 16 lies halfway between 8 and 32 in ln n
    assert curve.tokens_per_s(16) == pytest.approx(1200.0)
    assert curve.power_w(16) == pytest.approx(500.0)
    assert curve.itl_ms(16) == pytest.approx(15.0)
    assert curve.itl_ms(16, "p99") == pytest.approx(30.0)
    assert curve.tokens_per_s(32) == pytest.approx(1600.0)


def test_below_the_smallest_point() -> None:
    curve = LlmCurve(TWO, idle_w=100.0)
    # per-request rate of n = 8 (100 tokens/s each) and its ITL
    assert curve.tokens_per_s(4) == pytest.approx(400.0)
    assert curve.itl_ms(2) == pytest.approx(10.0)
    # power: first segment's slope 200 W per ln 4, down from 400 W: 300 W at n = 4,
    # 100 W at n = 1, never below the idle power; P(0) = idle
    assert curve.power_w(4) == pytest.approx(300.0)
    assert curve.power_w(1) == pytest.approx(100.0)
    assert LlmCurve(TWO, idle_w=150.0).power_w(1) == pytest.approx(150.0)
    assert curve.power_w(0) == 100.0
    assert curve.tokens_per_s(0) == 0.0


def test_a_falling_first_segment_keeps_power_flat_below_it() -> None:
    falling = (CapPoint(8, 8.0, 800.0, 500.0, 10.0, 20.0), CapPoint(16, 16.0, 900.0, 450.0, 11, 22))
    assert LlmCurve(falling, idle_w=75.0).power_w(2) == pytest.approx(500.0)


def test_rate_table() -> None:
    rate, power = LlmCurve(TWO, idle_w=100.0).rate_table(16)
    assert rate[0] == 0.0 and power[0] == 100.0
    assert rate[4] == pytest.approx(100.0)  # 400 tokens/s shared by 4
    assert rate[16] == pytest.approx(1200.0 / 16)
    assert power[16] == pytest.approx(500.0)


def test_running_limit_is_the_measured_concurrency() -> None:
    # Llama-3.1-8B on one H100 at cap 768 ran 690.9 requests on average
    points = (CapPoint(512, 510.9, 9806.0, 688.0, 47.4, 106.8),
              CapPoint(768, 690.9, 9603.0, 685.0, 62.9, 192.0))
    curve = LlmCurve(points, idle_w=75.0)
    assert curve.running_limit(768) == 691
    assert curve.running_limit(512) == 511
    with pytest.raises(ProfileError, match="cap 600 was not measured"):
        curve.running_limit(600)


def test_duplicates_are_averaged_and_dips_reported() -> None:
    rows = [CapPoint(256, 255.0, 7154.0, 880.0, 30.0, 60.0),
            CapPoint(64, 63.8, 5589.0, 617.0, 9.0, 34.2),
            CapPoint(256, 253.0, 7437.0, 1000.0, 32.0, 70.0),
            CapPoint(128, 127.5, 4570.0, 449.0, 26.7, 58.4)]
    merged = merge_duplicate_caps(rows)
    assert [p.cap for p in merged] == [64, 128, 256]
    assert merged[2].tokens_per_s == pytest.approx(7295.5)
    assert merged[2].power_w == pytest.approx(940.0)
    assert merged[2].concurrency == pytest.approx(254.0)
    dips = LlmCurve(tuple(merged), 75.0).dips()
    assert dips == [(128, "tokens_per_s", pytest.approx(1 - 4570 / 5589))]
    # kept as measured
    assert LlmCurve(tuple(merged), 75.0).tokens_per_s(127.5) == pytest.approx(4570.0)


@pytest.mark.parametrize("points, match", [
    ((TWO[1], TWO[0]), "increasing order"),
    ((TWO[0], TWO[0]), "distinct"),
    ((), "at least one"),
])
def test_refused_curves(points: tuple, match: str) -> None:
    with pytest.raises(ProfileError, match=match):
        LlmCurve(points, idle_w=75.0)


def test_refused_points_and_idle() -> None:
    with pytest.raises(ProfileError, match="power_w must be a finite number > 0"):
        CapPoint(8, 8.0, 800.0, math.nan, 10.0, 20.0)
    with pytest.raises(ProfileError, match="at most the cap"):
        CapPoint(8, 12.0, 800.0, 400.0, 10.0, 20.0)
    with pytest.raises(ProfileError, match="idle power"):
        LlmCurve(TWO, idle_w=450.0)


def test_leave_one_out_by_hand() -> None:
    points = TWO[:1] + (CapPoint(16, 16.0, 1100.0, 520.0, 14.0, 28.0),) + TWO[1:]
    (row,) = leave_one_out(points, idle_w=100.0)
    assert row["cap"] == 16
    assert row["tokens_per_s"] == pytest.approx(1200.0 / 1100.0 - 1)
    assert row["power_w"] == pytest.approx(500.0 / 520.0 - 1)
    assert row["itl_median_ms"] == pytest.approx(15.0 / 14.0 - 1)


# -- the simulator ------------------------------------------------------------------------

ONE = LlmCurve((CapPoint(2, 2.0, 20.0, 300.0, 100.0, 120.0),), idle_w=100.0)


def test_two_requests_share_the_replica() -> None:
    """A: 10 tokens at t=0; B: 10 tokens at t=0.5. Alone, A gets 10 tokens/s (R(2)/2,
    the per-request rate below the smallest point): 5 tokens by 0.5 s. Together each gets
    R(2)/2 = 10 tokens/s: A's last 5 take 0.5 s (done at 1.0), when B has 5; alone again,
    B's last 5 take 0.5 s (done at 1.5). Power 300 W throughout: 450 J."""
    run = serve_replica(ONE, 2, np.array([0.0, 0.5]), np.array([10, 10]))
    np.testing.assert_allclose(run.finished_s, [1.0, 1.5])
    np.testing.assert_allclose(run.started_s, [0.0, 0.5])
    assert run.energy_j == pytest.approx(450.0)
    assert run.output_tokens == pytest.approx(20.0)
    assert run.mean_running == pytest.approx((0.5 + 2 * 0.5 + 0.5) / 1.5)


def test_the_cap_queues_fifo_and_idle_time_draws_idle_power() -> None:
    """Cap 1 (limit 1): requests of 10, 10, 10 tokens at 0, 0, 3 s, at 10 tokens/s each:
    the second waits for the first (1 s), the third finds an idle replica (2-3 s at
    100 W idle). Energy: 3 s busy at 300 W + 1 s idle at 100 W."""
    curve = LlmCurve((CapPoint(1, 1.0, 10.0, 300.0, 100.0, 100.0),), idle_w=100.0)
    run = serve_replica(curve, 1, np.array([0.0, 0.0, 3.0]), np.array([10, 10, 10]))
    np.testing.assert_allclose(run.started_s, [0.0, 1.0, 3.0])
    np.testing.assert_allclose(run.finished_s, [1.0, 2.0, 4.0])
    assert run.energy_j == pytest.approx(3 * 300.0 + 1 * 100.0)


def test_the_span_can_end_before_the_work() -> None:
    run = serve_replica(ONE, 2, np.array([0.0, 0.5]), np.array([10, 10]), end_s=0.75)
    assert np.isinf(run.finished_s).all()
    assert run.energy_j == pytest.approx(0.75 * 300.0)
    assert run.output_tokens == pytest.approx(5.0 + 0.25 * 20.0)


def test_mean_sojourn_matches_m_g_1_processor_sharing() -> None:
    """With R(n) constant and no binding cap, the replica is an M/G/1-PS queue, whose mean
    sojourn is 1 / (mu - lambda) whatever the length distribution (insensitivity):
    lengths uniform on [1, 19] tokens (mean 10) at 100 tokens/s: mu = 10/s; lambda = 6/s."""
    flat = LlmCurve((CapPoint(1, 1.0, 100.0, 300.0, 10.0, 10.0),
                     CapPoint(4096, 4096.0, 100.0, 300.0, 10.0, 10.0)), idle_w=0.0)
    rng = np.random.default_rng(1)
    n = 300_000
    arrivals = np.cumsum(rng.exponential(1 / 6, n))
    run = serve_replica(flat, 4096, arrivals, rng.uniform(1, 19, n))
    assert np.mean(run.finished_s - arrivals) == pytest.approx(1 / (10 - 6), rel=0.03)


@pytest.mark.parametrize("arrivals, tokens, match", [
    ([1.0, 0.5], [5, 5], "sorted"),
    ([0.0], [0.5], "at least 1 output token"),
    ([0.0, 1.0], [5], "one length per request"),
])
def test_bad_requests(arrivals: list, tokens: list, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        serve_replica(ONE, 2, np.array(arrivals), np.array(tokens))


# -- against ML.ENERGY --------------------------------------------------------------------

def shipped_file(stem: str) -> Path:
    path = V3 / f"{stem}__lm-arena-chat.json"
    if not path.is_file():
        pytest.skip(f"ML.ENERGY data absent at {path}")
    return path


@pytest.mark.parametrize("stem, gpus", SHIPPED)
def test_saturation_reproduces_every_measured_cap(stem: str, gpus: int) -> None:
    """At n = cap the model gives ML.ENERGY's J/request, output tokens/s and median ITL
    within 5 % at every measured cap (the cap's rows averaged where there are two)."""
    checks = saturation_checks(read_model_file(shipped_file(stem)), "H100", gpus, 75.0)
    assert len(checks) >= 3
    bad = [(c.cap, c.worst_error()) for c in checks if c.worst_error() > 0.05]
    assert not bad, bad


def test_the_b200_dip_and_the_duplicate_caps_from_the_files() -> None:
    llama = read_model_file(shipped_file("meta-llama__Llama-3.1-8B-Instruct"))
    assert [d[0] for d in llm_curve(llama, "B200", 1, 75.0).dips()] == [128]
    qwen_path = shipped_file("Qwen__Qwen3-30B-A3B-Instruct-2507")
    rows = [c for c in json.loads(qwen_path.read_text())["configurations"]
            if c["gpu_model"] == "H100" and c["num_gpus"] == 2 and c["max_num_seqs"] == 256]
    assert len(rows) == 2
    curve = llm_curve(read_model_file(qwen_path), "H100", 2, 75.0)
    (point,) = [p for p in curve.points if p.cap == 256]
    key = "output_throughput_tokens_per_sec"
    assert point.tokens_per_s == pytest.approx((rows[0][key] + rows[1][key]) / 2)


def test_a_file_without_a_needed_field_is_named(tmp_path: Path) -> None:
    config = {"gpu_model": "H100", "num_gpus": 1, "max_num_seqs": 8, "avg_output_len": 400,
              "energy_per_request_joules": 170.0, "avg_power_watts": 480.0,
              "median_itl_ms": 7.0, "p99_itl_ms": 11.0, "output_throughput_tokens_per_sec": 1000}
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"model_id": "x/y", "task": "lm-arena-chat",
                                "configurations": [config]}))
    with pytest.raises(ProfileError, match=r"m\.json: configurations\[0\] has no key "
                                           r"'avg_batch_size'"):
        llm_curve(read_model_file(path), "H100", 1, 75.0)
    with pytest.raises(ProfileError, match="no configuration on 2 x H100"):
        llm_curve(read_model_file(path), "H100", 2, 75.0)


# -- the load table: what a planner reads ------------------------------------------------

def test_load_table_on_an_m_g_1_ps_replica() -> None:
    """Flat R(n) = 100 tokens/s, lengths uniform on [1, 19] (mean 10): mu = 10 req/s. At
    load rho the mean sojourn is 1 / (mu (1 - rho)) and, with P = 300 W busy and 100 W
    idle, the mean power is 100 + 200 rho (the replica is busy a share rho of the time)."""
    flat = LlmCurve((CapPoint(1, 1.0, 100.0, 300.0, 10.0, 10.0),
                     CapPoint(4096, 4096.0, 100.0, 300.0, 10.0, 10.0)), idle_w=100.0)
    lengths = TokenLengths.from_histogram([1, 19], [1], "uniform 1-19")
    table = load_table(flat, 4096, lengths, requests=200_000, loads=(0.25, 0.5, 0.75))
    assert table.saturated_rps == pytest.approx(10.0, rel=0.01)
    for rho, mean_ms, watts in zip(table.loads, table.mean_ms, table.power_w, strict=True):
        assert mean_ms == pytest.approx(1000 / (10 * (1 - rho)), rel=0.05)
        assert watts == pytest.approx(100 + 200 * rho, rel=0.03)
    assert table.mean_at(0.5 * table.saturated_rps) == pytest.approx(table.mean_ms[1])
    assert table.p99_at(0.75 * table.saturated_rps) == math.inf


def test_max_rate_by_hand() -> None:
    table = LoadTable(10.0, np.array([0.2, 0.4, 0.6]), np.array([100.0, 200.0, 400.0]),
                      np.zeros(3), np.zeros(3))
    assert table.max_rate(300.0) == pytest.approx(5.0)  # halfway from 0.4 to 0.6
    assert table.max_rate(500.0) == pytest.approx(6.0)  # the last load
    assert table.max_rate(50.0) == 0.0
    assert table.p99_at(3.0) == pytest.approx(150.0)


@pytest.mark.parametrize("loads", [(0.5,), (0.5, 0.4), (0.0, 0.5), (0.5, 1.0)])
def test_bad_loads(loads: tuple) -> None:
    with pytest.raises(ConfigError, match="must increase within"):
        load_table(ONE, 2, TokenLengths.from_histogram([1, 2], [1], "h"), loads=loads)


@pytest.mark.parametrize("stem, gpus", SHIPPED)
def test_the_table_agrees_with_an_independent_run(stem: str, gpus: int) -> None:
    """At 25, 50 and 90 % of each cap's saturated rate, the table's p99 (seed 0) and the
    p99 of a replica run on other arrivals and lengths (seed 99) agree within 10 %."""
    f = read_model_file(shipped_file(stem))
    curve = llm_curve(f, "H100", gpus, 75.0)
    lengths = cap_lengths(f, llm_configurations(f, "H100", gpus)[0][1])
    worst = []
    for cap in curve.caps:
        table = load_table(curve, cap, lengths)
        rng = np.random.default_rng(99)
        n = 40_000
        _, tokens = lengths.draw(rng.random(n))
        for rho in (0.25, 0.5, 0.9):
            rate = rho * table.saturated_rps
            arrivals = np.cumsum(rng.exponential(1 / rate, n))
            run = serve_replica(curve, cap, arrivals, tokens)
            p99 = np.percentile((run.finished_s - arrivals)[n // 10:] * 1e3, 99)
            worst.append((abs(table.p99_at(rate) / p99 - 1), cap, rho))
    assert max(worst)[0] < 0.10, max(worst)
