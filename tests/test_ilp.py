"""IPA's ILP against exhaustive search, its predictions against envs.model.perf, its errors."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.config.errors import ConfigError, IpaEnergyError
from envs.model import accuracy, perf, power
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision
from ipa_baseline import InfeasibleError, Restriction, solve_ipa
from tests.conftest import tiny_profile_doc

WEIGHTS = [
    {"mode": "sum", "alpha": 2.0, "beta": 1.0, "gamma": 1e-6, "delta": 0.0},
    {"mode": "sum", "alpha": 6.0, "beta": 1.0, "gamma": 0.01, "delta": 0.0},
    {"mode": "product", "alpha": 8.0, "beta": 1.0, "gamma": 0.05, "delta": 0.0},
    {"mode": "sum", "alpha": 5.0, "beta": 0.5, "gamma": 0.01, "delta": 0.02},
    {"mode": "product", "alpha": 10.0, "beta": 0.0, "gamma": 0.0, "delta": 0.05},
]
RATES = (0.0, 4.0, 23.5, 61.0, 140.0, 260.0)
MAX_REPLICAS = 4
INTERVAL_S = 10.0


def random_pipeline(tmp_path: Path, seed: int) -> Pipeline:
    """The tiny pipeline with seeded random latencies, energies, accuracies, SLA, base cores."""
    rng = np.random.default_rng(seed)
    doc = tiny_profile_doc(sla_ms=float(rng.uniform(150.0, 900.0)))
    if seed % 2:  # per-stage knob values: the second stage offers batches 2 and 4 only
        doc["stages"][1]["batch_sizes"] = [2, 4]
    for stage in doc["stages"]:
        accs = rng.choice(np.arange(40.0, 96.0, 0.5), size=len(stage["variants"]),
                          replace=False)
        for variant, acc in zip(stage["variants"], accs, strict=True):
            variant["accuracy"] = float(acc)
            variant["base_cores"] = int(rng.integers(1, 3))
            for row in variant["rows"]:
                mean = row[2] * float(rng.uniform(0.5, 2.0))
                row[2], row[3] = mean, mean * float(rng.uniform(1.0, 1.6))
                row[4] = row[4] * float(rng.uniform(0.3, 3.0))
    path = tmp_path / f"random{seed}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_pipeline(path)


def objective(pipeline: Pipeline, decision: Decision, rate: float, mode: str, alpha: float,
              beta: float, gamma: float, delta: float, timeout_ms: float = math.inf) -> float:
    """IPA's objective of a full decision, from envs.model.perf only."""
    acc = accuracy.decision_accuracy(pipeline, decision, mode)
    return (alpha * acc - beta * perf.decision_cores(decision)
            - gamma * sum(c.batch for c in decision.stages)
            - delta * power.interval_energy_j(pipeline, decision, rate * INTERVAL_S, INTERVAL_S,
                                             timeout_ms))


def brute_force(pipeline: Pipeline, rate: float, weights: dict, *, cores: str = "base",
                variants: tuple | None = None, replicas: tuple | None = None,
                timeout_ms: float = math.inf) -> float | None:
    """Best objective over every (variant, batch, cores, replicas) per stage; None if none."""
    per_stage = []
    for s, stage in enumerate(pipeline.stages):
        options = []
        for v, variant in enumerate(stage.variants):
            if variants is not None and v not in variants[s]:
                continue
            core_counts = [variant.base_cores] if cores == "base" else variant.profile.core_counts
            counts = range(1, MAX_REPLICAS + 1) if replicas is None else (replicas[s],)
            for c, b, r in itertools.product(core_counts, stage.batch_sizes, counts):
                if perf.stage_throughput_rps(variant, b, c, r) >= rate:
                    options.append(StageDecision(v, b, r, c))
        per_stage.append(options)
    best = None
    for choice in itertools.product(*per_stage):
        decision = Decision(tuple(choice))
        if perf.e2e_latency_ms(pipeline, decision, rate, timeout_ms) > pipeline.sla_ms:
            continue
        value = objective(pipeline, decision, rate, **weights, timeout_ms=timeout_ms)
        best = value if best is None else max(best, value)
    return best


def check_against_brute_force(
    pipeline: Pipeline, rate: float, weights: dict, *, cores: str = "base",
    timeout_ms: float = math.inf, variants: tuple | None = None,
    replicas: tuple | None = None, replica_mode: str = "minimal",
) -> None:
    expected = brute_force(pipeline, rate, weights, cores=cores, variants=variants,
                           replicas=replicas, timeout_ms=timeout_ms)
    solve = dict(max_replicas=MAX_REPLICAS, interval_s=INTERVAL_S, cores=cores,
                 timeout_ms=timeout_ms, replica_mode=replica_mode,
                 restriction=Restriction(variants=variants, replicas=replicas), **weights)
    if expected is None:
        with pytest.raises(InfeasibleError):
            solve_ipa(pipeline, rate, **solve)
        return
    result = solve_ipa(pipeline, rate, **solve)
    got = objective(pipeline, result.decision, rate, **weights, timeout_ms=timeout_ms)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert result.objective == pytest.approx(expected, rel=1e-7, abs=1e-7)
    pipeline.validate(result.decision)


@pytest.mark.parametrize("seed", range(4))
def test_ilp_equals_brute_force(tmp_path: Path, seed: int) -> None:
    pipeline = random_pipeline(tmp_path, seed)
    for rate, weights in itertools.product(RATES, WEIGHTS):
        check_against_brute_force(pipeline, rate, weights)


@pytest.mark.parametrize("seed", range(2))
def test_free_replicas_and_core_knob_equal_brute_force(tmp_path: Path, seed: int) -> None:
    pipeline = random_pipeline(tmp_path, 10 + seed)
    for rate, weights in itertools.product(RATES[1:5], WEIGHTS[1:4]):
        check_against_brute_force(pipeline, rate, weights, replica_mode="free")
        check_against_brute_force(pipeline, rate, weights, cores="profiled")
        check_against_brute_force(pipeline, rate, weights, timeout_ms=60.0)


def test_restrictions_equal_restricted_brute_force(tmp_path: Path) -> None:
    pipeline = random_pipeline(tmp_path, 20)
    for rate, weights in itertools.product(RATES, WEIGHTS[:4]):
        check_against_brute_force(pipeline, rate, weights, variants=((0,), (1,)))
        check_against_brute_force(pipeline, rate, weights, variants=((2,), (0, 1)))
        check_against_brute_force(pipeline, rate, weights, replicas=(2, 3))


@pytest.mark.parametrize("seed", range(3))
def test_predictions_equal_perf(tmp_path: Path, seed: int) -> None:
    pipeline = random_pipeline(tmp_path, 30 + seed)
    for rate, weights, timeout in itertools.product(RATES[1:], WEIGHTS, (math.inf, 50.0)):
        try:
            result = solve_ipa(pipeline, rate, max_replicas=MAX_REPLICAS, interval_s=INTERVAL_S,
                               timeout_ms=timeout, **weights)
        except InfeasibleError:
            continue
        d = result.decision
        assert result.predicted_latency_ms == pytest.approx(
            perf.e2e_latency_ms(pipeline, d, rate, timeout), rel=1e-9)
        assert result.predicted_latency_ms <= pipeline.sla_ms + 1e-6
        assert result.predicted_cores == perf.decision_cores(d)
        assert result.predicted_energy_j == pytest.approx(
            power.interval_energy_j(pipeline, d, rate * INTERVAL_S, INTERVAL_S, timeout), rel=1e-9)
        assert perf.decision_throughput_rps(pipeline, d) >= rate
        assert result.solve_ms > 0


def test_energy_term_never_raises_predicted_energy(tmp_path: Path) -> None:
    pipeline = random_pipeline(tmp_path, 40)
    lowered = 0
    for rate in RATES[1:]:
        plain = solve_ipa(pipeline, rate, max_replicas=MAX_REPLICAS, beta=0.2)
        green = solve_ipa(pipeline, rate, max_replicas=MAX_REPLICAS, beta=0.2, delta=0.05)
        assert green.predicted_energy_j <= plain.predicted_energy_j + 1e-9
        lowered += green.predicted_energy_j < plain.predicted_energy_j - 1e-9
    assert lowered >= 1


def test_sla_infeasible_names_latency(tiny_pipeline: Pipeline) -> None:
    tight = dataclasses.replace(tiny_pipeline, sla_ms=30.0)
    with pytest.raises(InfeasibleError, match=r"SLA 30 ms < fastest possible 36 ms") as info:
        solve_ipa(tight, 10.0)
    assert info.value.constraint == "latency"
    assert isinstance(info.value, IpaEnergyError) and isinstance(info.value, RuntimeError)


def test_sla_infeasible_because_fast_configs_lack_throughput(tiny_pipeline: Pipeline) -> None:
    tight = dataclasses.replace(tiny_pipeline, sla_ms=40.0)
    with pytest.raises(InfeasibleError, match=r"SLA 40 ms < fastest possible .* cannot "
                       r"reach the rate") as info:
        solve_ipa(tight, 60.0, max_replicas=1)
    assert info.value.constraint == "latency"


def test_throughput_infeasible_names_stage_and_rate(tiny_pipeline: Pipeline) -> None:
    with pytest.raises(InfeasibleError, match=r"stage 'first' cannot serve 1000.0 rps within "
                       r"max_replicas=2") as info:
        solve_ipa(tiny_pipeline, 1000.0, max_replicas=2)
    assert (info.value.constraint, info.value.stage) == ("throughput", "first")
    with pytest.raises(InfeasibleError, match=r"within the fixed 1 replicas"):
        solve_ipa(tiny_pipeline, 100.0, restriction=Restriction(replicas=(1, 1)))


def test_invalid_arguments(tiny_pipeline: Pipeline) -> None:
    with pytest.raises(ConfigError, match="rate_rps"):
        solve_ipa(tiny_pipeline, -1.0)
    with pytest.raises(ConfigError, match="no variant index"):
        solve_ipa(tiny_pipeline, 1.0, restriction=Restriction(variants=((5,), None)))
    with pytest.raises(ConfigError, match="accuracy mode"):
        solve_ipa(tiny_pipeline, 1.0, mode="average")  # type: ignore[arg-type]
    negative = dataclasses.replace(tiny_pipeline.stages[0].variants[0], accuracy=-30.0)
    stage = dataclasses.replace(tiny_pipeline.stages[0],
                                variants=(negative, *tiny_pipeline.stages[0].variants[1:]))
    bad = dataclasses.replace(tiny_pipeline, stages=(stage, tiny_pipeline.stages[1]))
    with pytest.raises(ConfigError, match="positive accuracies"):
        solve_ipa(bad, 1.0, mode="product")
