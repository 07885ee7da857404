"""The shared performance helpers the ILP builds on, against numbers computed by hand.

A variant ``a`` with batch-4 rows of mean 80 ms and p99 96 ms, and batch-1 rows of mean
25 ms and p99 30 ms, at 2 cores; a variant ``b`` with batch-1 mean 10 ms, p99 12 ms and
batch-4 mean 32 ms, p99 40 ms at 1 core.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.model import accuracy, perf, power
from envs.model.fleet import DevicePool, Fleet
from envs.model.profile_data import Profile, ProfileRow, Source
from envs.model.spec import Decision, ModelVariant, Pipeline, Stage, StageDecision

SOURCES = {"hand": Source("hand", "cited", "hand-written test numbers")}


def variant(name: str, accuracy: float, cores: int,
            rows: dict[int, tuple[float, float]]) -> ModelVariant:
    profile = Profile(tuple(ProfileRow(b, cores, mean, p99, 0.1 * b, "hand", "hand")
                            for b, (mean, p99) in rows.items()), SOURCES)
    return ModelVariant(name, accuracy, "top-1 (%)", "hand", cores, profile)


A = variant("a", 70.0, 2, {1: (25.0, 30.0), 4: (80.0, 96.0)})
B = variant("b", 50.0, 1, {1: (10.0, 12.0), 4: (32.0, 40.0)})
C = variant("c", 90.0, 1, {1: (40.0, 44.0), 4: (100.0, 120.0)})


def pipeline() -> Pipeline:
    return Pipeline("hand", (Stage("one", (A, B, C), (1, 4)), Stage("two", (B,), (1, 4))), 1000.0,
                    Fleet((DevicePool("cpu", "test", "cpu_core", 4, nodes=8, always_on=1,
                                      node_static_w=0.0, device_idle_w=0.0,
                                      allocated_w=1.0),)), SOURCES)


def test_batch_fill_delay() -> None:
    assert perf.batch_fill_delay_ms(4, 20.0) == pytest.approx(150.0)  # 3 requests / 20 rps
    assert perf.batch_fill_delay_ms(8, 35.0) == pytest.approx(200.0)  # 7 / 35 rps
    assert perf.batch_fill_delay_ms(1, 20.0) == 0.0
    assert perf.batch_fill_delay_ms(4, 20.0, timeout_ms=100.0) == 100.0
    assert perf.batch_fill_delay_ms(4, 0.0, timeout_ms=50.0) == 50.0
    assert math.isinf(perf.batch_fill_delay_ms(4, 0.0))


def test_throughput_uses_the_mean_latency() -> None:
    assert perf.replica_throughput_rps(A, 4, 2) == pytest.approx(50.0)  # 4 / 0.080 s
    assert perf.replica_throughput_rps(A, 1, 2) == pytest.approx(40.0)  # 1 / 0.025 s
    assert perf.replica_throughput_rps(B, 4, 1) == pytest.approx(125.0)  # 4 / 0.032 s
    assert perf.stage_throughput_rps(A, 4, 2, 3) == pytest.approx(150.0)


def test_replicas_for_rate() -> None:
    assert perf.replicas_for_rate(A, 4, 2, 120.0) == 3  # 50 rps each: 2 give 100
    assert perf.replicas_for_rate(A, 4, 2, 100.0) == 2  # exactly 2 x 50
    assert perf.replicas_for_rate(A, 4, 2, 0.0) == 1
    assert perf.replicas_for_rate(B, 1, 1, 250.0) == 3  # 100 rps each


def test_stage_latency_is_p99_plus_fill() -> None:
    assert perf.stage_latency_ms(A, 4, 2, 20.0) == pytest.approx(96.0 + 150.0)
    assert perf.stage_latency_ms(A, 1, 2, 20.0) == pytest.approx(30.0)
    assert perf.stage_latency_ms(B, 4, 1, 60.0) == pytest.approx(40.0 + 50.0)
    assert perf.stage_latency_ms(A, 4, 2, 20.0, timeout_ms=10.0) == pytest.approx(106.0)


def test_e2e_latency_sums_the_stages() -> None:
    p = pipeline()
    d = Decision((StageDecision(0, 4, 2, 2), StageDecision(0, 4, 1, 1)))
    # (96 ms + 3 requests / 30 rps) + (40 ms + 3 / 30 rps) = 196 + 140 = 336 ms
    assert perf.e2e_latency_ms(p, d, 30.0) == pytest.approx(96.0 + 100.0 + 40.0 + 100.0)
    assert perf.decision_cores(d) == 5  # 2 x 2 + 1 x 1
    assert perf.decision_throughput_rps(p, d) == pytest.approx(100.0)  # min(2 x 50, 125)


def test_accuracy_ranks_and_product() -> None:
    p = pipeline()
    # accuracies 70, 50, 90: ranks 1, 0, 2 over n - 1 = 2
    assert p.stages[0].accuracy_ranks == (0.5, 0.0, 1.0)
    assert p.stages[1].accuracy_ranks == (1.0,)
    assert accuracy.accuracy_rank_sum(p, [2, 0]) == pytest.approx(2.0)
    assert accuracy.accuracy_product(p, [0, 0]) == pytest.approx(0.7 * 0.5)
    assert accuracy.accuracy_product(p, [2, 0]) == pytest.approx(0.45)


def test_measured_to_dynamic_and_busy_batch_energy() -> None:
    # 1000 J measured over 2 s on two GPUs idling at 75 W each: 1000 - 150 x 2 = 700 J
    assert power.dynamic_from_measured_j(1000.0, 150.0, 2.0) == pytest.approx(700.0)
    # 3.36 W per busy core, 2 cores, a 500-ms batch: 3.36 x 2 x 0.5 = 3.36 J
    assert power.busy_batch_energy_j(3.36, 2, 500.0) == pytest.approx(3.36)


def test_partial_batches() -> None:
    # batch 4, timeout 100 ms: 3 more requests need 30 req/s; 20 req/s brings 2 -> partial
    assert perf.partial_batches(4, 20.0, 100.0)
    assert not perf.partial_batches(4, 30.0, 100.0)  # exactly 3 arrive: the batch fills
    assert not perf.partial_batches(1, 0.0, 100.0)  # a batch of one is never partial
    assert not perf.partial_batches(4, 1.0, math.inf)  # no timeout: batches always fill
    assert list(perf.partial_batches(np.array([1, 4, 4]), np.array([0.0, 20.0, 40.0]),
                                     100.0)) == [False, True, False]


def test_stage_median_latency() -> None:
    # 10 ms backlog + half of a 30 ms fill + 7 ms mean batch latency = 32 ms
    assert perf.stage_median_latency_ms(10.0, 30.0, 7.0) == 32.0
    assert list(perf.stage_median_latency_ms(np.array([0.0, 10.0]), np.array([4.0, 30.0]),
                                             np.array([1.0, 7.0]))) == [3.0, 32.0]


def test_late_fraction_interpolates_between_the_quantiles() -> None:
    # p50 = 100, p99 = 300 ms: at SLA 300 (= p99) 1 % late, at SLA 100 (= p50) 50 %,
    # at SLA 200 (halfway) 0.01 + 0.49 x 100 / 200 = 0.255
    assert perf.late_fraction(100.0, 300.0, 200.0) == pytest.approx(0.255)
    assert perf.late_fraction(100.0, 300.0, 299.999999) == pytest.approx(0.01)
    assert perf.late_fraction(100.0, 300.0, 100.000001) == pytest.approx(0.5)
    assert perf.late_fraction(100.0, 300.0, 300.0) == 0.0  # p99 within the SLA: none
    assert perf.late_fraction(250.0, 300.0, 250.0) == 1.0  # median past it: all
    assert perf.late_fraction(200.0, 200.0 + 1e-12, 200.0) == 1.0
