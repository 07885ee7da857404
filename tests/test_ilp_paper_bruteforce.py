"""IPA's ILP against a brute force written here from the paper's formulas (arXiv 2308.12871,
section 4), with no `envs.model.perf` import: a wrong shared helper fails this test.

The paper's model, per stage ``s`` with variant ``v``, batch ``b`` and ``r`` replicas of
``c`` cores each (``mean``/``p99``: the profile's batch latency in ms):

* throughput ``r * b / mean`` must reach the arrival rate ``lambda``;
* stage latency ``p99 + (b - 1) / lambda`` (the batch-filling delay), summed over the
  stages, must be within the SLA;
* objective ``alpha * A - beta * sum(r * c) - gamma * sum(b)`` with ``A`` the sum of
  rank-normalised accuracies ``rank / (n - 1)`` (``sum``) or the product of the
  accuracies as fractions (``product``).

Instances have 2, 3 and 4 stages. Each SLA is drawn between the fastest feasible latency
and the latency of the unconstrained optimum, so it binds: the test demands that at least a
third of the feasible cases end within 10 % of their SLA.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import profile_document, variant_entry, write_profile
from envs.model.profiles import load_pipeline
from envs.model.spec import Pipeline
from ipa_baseline import InfeasibleError, solve_ipa

BATCHES = (1, 2, 4)
MAX_REPLICAS = 3
WEIGHTS = (
    {"mode": "sum", "alpha": 2.0, "beta": 1.0, "gamma": 0.01},
    {"mode": "sum", "alpha": 6.0, "beta": 0.5, "gamma": 0.05},
    {"mode": "product", "alpha": 10.0, "beta": 0.5, "gamma": 0.01},
    {"mode": "product", "alpha": 40.0, "beta": 1.0, "gamma": 0.05},
)


@dataclasses.dataclass
class Table:
    """One instance as plain numbers: per stage, per variant name, the rows."""

    names: list[list[str]]
    accuracy: list[list[float]]
    cores: list[list[int]]
    mean_ms: list[list[dict[int, float]]]
    p99_ms: list[list[dict[int, float]]]


def make_instance(tmp_path: Path, n_stages: int, seed: int) -> tuple[Table, Pipeline]:
    """Random instance (3 variants per stage), as a table and as a loaded pipeline."""
    rng = np.random.default_rng(1000 * n_stages + seed)
    table = Table([], [], [], [], [])
    stages = []
    for s in range(n_stages):
        names, accs, cores, means, p99s, variants = [], [], [], [], [], []
        accuracy = np.sort(rng.choice(np.arange(40.0, 96.0, 0.5), 3, replace=False))
        for v in range(3):
            ms1 = float(rng.uniform(8.0, 25.0)) * (1.0 + 0.8 * v)
            c = int(rng.integers(1, 3))
            mean = {b: round(ms1 * (0.3 + 0.7 * b) * float(rng.uniform(0.9, 1.1)), 3)
                    for b in BATCHES}
            p99 = {b: round(mean[b] * float(rng.uniform(1.05, 1.6)), 3) for b in BATCHES}
            name = f"s{s}v{v}"
            names.append(name)
            accs.append(float(accuracy[v]))
            cores.append(c)
            means.append(mean)
            p99s.append(p99)
            variants.append(variant_entry(
                name, float(accuracy[v]),
                [[b, c, mean[b], p99[b], 0.01 * b, "lat", "en"] for b in BATCHES],
                metric="test (%)", source="random", base_cores=c))
        stages.append({"name": f"stage{s}", "variants": variants})
        table.names.append(names)
        table.accuracy.append(accs)
        table.cores.append(cores)
        table.mean_ms.append(means)
        table.p99_ms.append(p99s)
    doc = profile_document(
        f"paper{n_stages}", sla_ms=1e6, batch_sizes=BATCHES,
        pools=[pool_entry("cpu", "test", devices_per_node=64, nodes=8, always_on=1,
                          allocated_w=1.0, sources={"allocated_w": "en"})],
        sources={"lat": {"kind": "cited", "description": "random, for tests"},
                 "en": {"kind": "estimated", "description": "random, for tests"}},
        stages=stages,
    )
    return table, load_pipeline(write_profile(doc, tmp_path / f"paper{n_stages}_{seed}.yaml"))


def ranks(accuracies: list[float]) -> list[float]:
    """rank / (n - 1): 0 for the least accurate, 1 for the most (IPA's normalisation)."""
    order = sorted(range(len(accuracies)), key=lambda i: accuracies[i])
    out = [0.0] * len(accuracies)
    for rank, i in enumerate(order):
        out[i] = rank / (len(accuracies) - 1)
    return out


def stage_options(t: Table, s: int, rate: float, mode: str) -> np.ndarray:
    """Rows (accuracy term, latency ms, cores, batch, variant, replicas) of every feasible
    (variant, batch, replicas) of stage ``s`` at ``rate``, from the paper's formulas."""
    acc = ranks(t.accuracy[s]) if mode == "sum" else [a / 100.0 for a in t.accuracy[s]]
    out = []
    for v, b, r in itertools.product(range(3), BATCHES, range(1, MAX_REPLICAS + 1)):
        throughput = r * b / (t.mean_ms[s][v][b] / 1000.0)
        if throughput < rate:
            continue
        latency = t.p99_ms[s][v][b] + (b - 1) / rate * 1000.0
        out.append((acc[v], latency, r * t.cores[s][v], b, v, r))
    return np.array(out, dtype=float).reshape(-1, 6)


def grid(t: Table, rate: float, w: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """Objective and latency of every combination of the stages' options (flattened)."""
    options = [stage_options(t, s, rate, w["mode"]) for s in range(len(t.names))]
    if any(len(o) == 0 for o in options):
        return None
    n = len(options)
    acc = np.ones(()) if w["mode"] == "product" else np.zeros(())
    latency = cost = batch = np.zeros(())
    for s, o in enumerate(options):
        shape = [1] * n
        shape[s] = len(o)
        col = [o[:, i].reshape(shape) for i in range(4)]
        acc = acc * col[0] if w["mode"] == "product" else acc + col[0]
        latency, cost, batch = latency + col[1], cost + col[2], batch + col[3]
    objective = w["alpha"] * acc - w["beta"] * cost - w["gamma"] * batch
    return objective.ravel(), np.broadcast_to(latency, objective.shape).ravel()


def evaluate(t: Table, pipeline: Pipeline, decision, rate: float, w: dict) -> tuple[float, float]:
    """Objective and latency of the ILP's decision, recomputed from the paper's formulas;
    asserts its throughput."""
    acc = 1.0 if w["mode"] == "product" else 0.0
    latency = cost = batch = 0.0
    for s, c in enumerate(decision.stages):
        v = t.names[s].index(pipeline.stages[s].variants[c.variant].name)
        assert c.cores == t.cores[s][v]
        assert c.replicas * c.batch / (t.mean_ms[s][v][c.batch] / 1000.0) >= rate - 1e-9
        a = ranks(t.accuracy[s])[v] if w["mode"] == "sum" else t.accuracy[s][v] / 100.0
        acc = acc * a if w["mode"] == "product" else acc + a
        latency += t.p99_ms[s][v][c.batch] + (c.batch - 1) / rate * 1000.0
        cost += c.replicas * c.cores
        batch += c.batch
    return w["alpha"] * acc - w["beta"] * cost - w["gamma"] * batch, latency


@pytest.mark.parametrize("n_stages", [2, 3, 4])
def test_ilp_equals_paper_brute_force_with_binding_sla(tmp_path: Path, n_stages: int) -> None:
    rng = np.random.default_rng(n_stages)
    feasible = binding = infeasible = 0
    for seed in range(3):
        table, pipeline = make_instance(tmp_path, n_stages, seed)
        for rate, w in itertools.product((6.0, 25.0, 70.0), WEIGHTS):
            result = grid(table, rate, w)
            if result is None:
                continue
            objective, latency = result
            free_best = objective.max()
            free_latency = latency[objective >= free_best - 1e-9].min()
            fastest = latency.min()
            if free_latency <= fastest + 1e-6:
                sla = fastest * 1.05
            else:
                sla = fastest + float(rng.uniform(0.1, 0.9)) * (free_latency - fastest)
            if rng.uniform() < 0.1:
                sla = 0.95 * fastest  # below the fastest: infeasible
            ok = latency <= sla
            forms = ("combinations", "chain") if w["mode"] == "product" else ("auto",)
            for form, replica_mode in itertools.product(forms, ("free", "minimal")):
                tight = dataclasses.replace(pipeline, sla_ms=sla)
                kwargs = {k: w[k] for k in ("mode", "alpha", "beta", "gamma")}
                if not ok.any():
                    with pytest.raises(InfeasibleError):
                        solve_ipa(tight, rate, max_replicas=MAX_REPLICAS,
                                  replica_mode=replica_mode, product_form=form, **kwargs)
                    infeasible += 1
                    continue
                best = objective[ok].max()
                got = solve_ipa(tight, rate, max_replicas=MAX_REPLICAS,
                                replica_mode=replica_mode, product_form=form, **kwargs)
                value, got_latency = evaluate(table, pipeline, got.decision, rate, w)
                assert got_latency <= sla + 1e-6, (n_stages, seed, rate, w, form)
                assert value == pytest.approx(best, abs=1e-7), (n_stages, seed, rate, w, form)
                assert got.objective == pytest.approx(best, abs=1e-5)  # solver tolerance
                assert got.predicted_latency_ms == pytest.approx(got_latency, rel=1e-9)
                feasible += 1
                binding += got_latency >= 0.9 * sla
    assert feasible >= 30 and infeasible >= 1
    assert binding >= feasible / 3, f"only {binding} of {feasible} cases bind the SLA"
