"""Device pools: a profile's fleet of device types, each with its nodes, power and price.
Energy by hand in both simulators and the batched env, IPA's cost in dollars, the energy-aware
ILP choosing the pool against a brute force, pool sizes, the loader's refusals and the
migration of a version-2 GPU profile."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.backends.base import ServingSettings
from envs.backends.fluid import FluidBackend
from envs.backends.requests import RequestBackend
from envs.config.errors import ProfileError
from envs.env_kwargs import config_from_kwargs
from envs.model import node_power, power
from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import profile_document, variant_entry, write_profile
from envs.model.profile_migrate import migrated_document
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision
from ipa_baseline import solve_ipa
from tests.test_batched_vecenv import play_both
from tests.test_cli_errors import REPO, run

SOURCES = {k: {"kind": "assumed", "description": "made up for tests"}
           for k in ("host", "idle_s", "idle_f", "price_f", "lat", "en")}
# the same model on two pools: "slow" nodes (2 devices, 100 W host + 2 x 10 W idle) are
# cheap; "fast" nodes (2 devices, 100 W host + 2 x 20 W idle) serve twice as fast for 3x
# the price
SLOW_ROWS = [[1, 1, 100.0, 100.0, 4.0, "lat", "en"], [2, 1, 150.0, 150.0, 6.0, "lat", "en"]]
FAST_ROWS = [[1, 1, 50.0, 50.0, 2.0, "lat", "en"], [2, 1, 75.0, 75.0, 2.5, "lat", "en"]]


def pools(fast_price: float = 3.0, nodes: int = 4) -> list[dict]:
    return [pool_entry("slow", "slow GPU", device="gpu", devices_per_node=2, nodes=nodes,
                       always_on=0, node_static_w=100.0, device_idle_w=10.0,
                       sources={"node_static_w": "host", "device_idle_w": "idle_s"}),
            pool_entry("fast", "fast GPU", device="gpu", devices_per_node=2, nodes=nodes,
                       always_on=0, node_static_w=100.0, device_idle_w=20.0,
                       price_per_device_hour=fast_price,
                       sources={"node_static_w": "host", "device_idle_w": "idle_f",
                                "price_per_device_hour": "price_f"})]


def stage(name: str) -> dict:
    variants = []
    for pool, rows in (("slow", SLOW_ROWS), ("fast", FAST_ROWS)):
        entry = variant_entry(f"m@{pool}", 70.0, rows, metric="top-1 (%)", source="test",
                              base_cores=1)
        variants.append({**entry, "pool": pool})
    return {"name": name, "variants": variants}


def two_pool_doc(n_stages: int = 2, **kwargs) -> dict:
    return profile_document("pools", sla_ms=5000.0, batch_sizes=[1, 2], pools=pools(**kwargs),
                            sources=copy.deepcopy(SOURCES),
                            stages=[stage(f"s{k}") for k in range(n_stages)])


@pytest.fixture
def two_pools(tmp_path: Path) -> Pipeline:
    return load_pipeline(write_profile(two_pool_doc(), tmp_path / "pools.yaml"))


def variant_index(pipeline: Pipeline, s: int, pool: str) -> int:
    return pipeline.stages[s].variant_index(f"m@{pool}")


@pytest.mark.parametrize("backend_cls", [FluidBackend, RequestBackend])
def test_each_pool_powers_its_own_nodes(two_pools: Pipeline, backend_cls) -> None:
    """Stage 0 holds 3 replicas on slow, stage 1 one on fast, no requests, 10 s: slow
    powers 2 nodes (4 devices idle, one unallocated), fast 1 node (2 devices idle): static
    100 W x 3 nodes x 10 s = 3000 J; idle (2 x 2 x 10 W + 1 x 2 x 20 W) x 10 s = 800 J."""
    decision = Decision((StageDecision(variant_index(two_pools, 0, "slow"), 1, 3, 1),
                         StageDecision(variant_index(two_pools, 1, "fast"), 1, 1, 1)))
    assert node_power.devices_by_pool(two_pools, decision) == (3.0, 1.0)
    sim = backend_cls(two_pools, ServingSettings(interval_s=10, cold_start_s=0.0))
    sim.reset(decision, seed=0)
    stats = sim.run_interval(np.zeros(10))
    assert (stats.static_j, stats.idle_j, stats.dynamic_j) == pytest.approx((3000, 800, 0))
    parts = power.interval_energy_parts(two_pools, decision, 0.0, 10.0)
    assert (parts.static_j, parts.idle_j) == pytest.approx((3000, 800))


def test_the_batched_env_matches_with_two_pools(tmp_path: Path) -> None:
    path = write_profile(two_pool_doc(), tmp_path / "pools.yaml")
    cfg = config_from_kwargs(None, {"pipeline": str(path), "max_replicas": 6,
                                    "cold_start_s": 3.0, "workload.window_s": 300,
                                    "workload.scale": 0.5})
    assert play_both(cfg, steps=120) > 0


def test_ipa_pays_dollars_and_the_energy_aware_ilp_pays_joules(tmp_path: Path) -> None:
    """One stage at 15 req/s. Slow serves 2 / 0.15 s = 13.3 req/s per replica at batch 2,
    fast 2 / 0.075 s = 26.7. IPA($) (beta 1, price 1 vs 3) takes 2 slow replicas ($2/h)
    over 1 fast ($3/h); the energy-aware ILP takes the fast one: one node at 140 W +
    15 x 1.25 J (1587.5 J in 10 s) vs one node at 120 W + 15 x 3 J (1650 J). A brute force
    over every (pool, batch, replicas) agrees for a range of prices and rates."""
    pipeline = load_pipeline(write_profile(two_pool_doc(1), tmp_path / "one.yaml"))
    slow, fast = variant_index(pipeline, 0, "slow"), variant_index(pipeline, 0, "fast")
    ipa = solve_ipa(pipeline, 15.0, alpha=1.0, beta=1.0, gamma=0.0, delta=0.0)
    assert (ipa.decision.stages[0].variant, ipa.decision.stages[0].replicas) == (slow, 2)
    green = solve_ipa(pipeline, 15.0, alpha=1.0, beta=0.0, gamma=0.0, delta=1.0)
    assert green.decision.stages[0] == StageDecision(fast, 2, 1, 1)
    assert green.predicted_energy_j == pytest.approx(10 * (140.0 + 15 * 1.25))
    rows = {"slow": {r[0]: r for r in SLOW_ROWS}, "fast": {r[0]: r for r in FAST_ROWS}}
    node_w = {"slow": 120.0, "fast": 140.0}
    for price, rate, beta, delta in itertools.product((1.5, 3.0, 6.0), (5.0, 15.0, 40.0),
                                                      (0.0, 1.0), (0.0, 0.01)):
        pipeline = load_pipeline(write_profile(two_pool_doc(1, fast_price=price),
                                               tmp_path / f"p{price}.yaml"))
        best = -math.inf
        for pool, b, n in itertools.product(("slow", "fast"), (1, 2), range(1, 9)):
            mean, p99, energy = rows[pool][b][2], rows[pool][b][3], rows[pool][b][4]
            if n * b * 1000 / mean < rate or p99 + (b - 1) * 1000 / rate > 5000:
                continue
            cost = n * (price if pool == "fast" else 1.0)
            joules = 10 * (node_w[pool] * math.ceil(n / 2) + rate * energy / b)
            best = max(best, 1.0 - beta * cost - delta * joules)
        got = solve_ipa(pipeline, rate, alpha=1.0, beta=beta, gamma=0.0, delta=delta,
                        replica_mode="free")
        assert got.objective == pytest.approx(best, abs=1e-6), (price, rate, beta, delta)


def test_the_planner_keeps_within_the_pools(tmp_path: Path) -> None:
    """One node of 2 devices per pool: 40 req/s needs 2 fast replicas (26.7 each), which
    fit; 60 req/s needs 3 of either kind and 2 + 2 do not serve it from one pool."""
    from ipa_baseline.errors import InfeasibleError

    pipeline = load_pipeline(write_profile(two_pool_doc(1, nodes=1), tmp_path / "small.yaml"))
    result = solve_ipa(pipeline, 40.0, beta=1.0, delta=0.0)
    assert result.decision.stages[0].replicas <= 2
    with pytest.raises(InfeasibleError, match="device pool"):
        solve_ipa(pipeline, 60.0, beta=1.0, delta=0.0)


def test_one_model_on_two_pools_shares_one_accuracy_rank(two_pools: Pipeline) -> None:
    assert two_pools.stages[0].accuracy_ranks == (1.0, 1.0)
    pipeline = load_pipeline("video")
    ranks = pipeline.stages[0].accuracy_ranks  # no ties: IPA's rank / (n - 1)
    order = np.argsort([v.accuracy for v in pipeline.stages[0].variants])
    assert [ranks[i] for i in order] == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d["pools"][1].update(price_per_device_hour=-1.0),
     "pool 'fast': price_per_device_hour must be a finite number >= 0"),
    (lambda d: d["pools"][0].update(boot_s=-5.0), "pool 'slow': boot_s must be a finite"),
    (lambda d: d["pools"][0].update(nodes=0), "pool 'slow': nodes must be >= 1"),
    (lambda d: d["pools"][0].update(always_on=9), "always_on must be between 0 and nodes"),
    (lambda d: d["stages"][0]["variants"][0].update(pool="tpu"),
     "pool 'tpu' is not a device pool of the profile"),
    (lambda d: d["stages"][0]["variants"][0].pop("pool"),
     "say which one the variant runs on (pool: NAME)"),
    (lambda d: d["pools"][1]["sources"].pop("price_per_device_hour"),
     "price_per_device_hour = 3.0 has no provenance"),
    (lambda d: d["pools"].append(dict(d["pools"][0])), "duplicate pool names"),
    (lambda d: (d["pools"][0].update(memory_gb=10.0),
                d["stages"][0]["variants"][0].update(weights_gb=16.0)),
     "do not fit 1 x 10 GB of pool 'slow'"),
])
def test_bad_pools_are_refused_with_the_field_and_the_fix(tmp_path: Path, change,
                                                          words: str) -> None:
    doc = two_pool_doc()
    change(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ProfileError, match="pool") as info:
        load_pipeline(path)
    assert words in str(info.value)


def test_a_bad_pool_stops_a_command_with_one_line(tmp_path: Path) -> None:
    doc = two_pool_doc()
    doc["pools"][0]["nodes"] = 0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = run(["evaluate.py", f"env.pipeline={path}"], REPO)
    assert out.returncode == 2 and "nodes must be >= 1" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_a_version_2_gpu_profile_becomes_a_one_pool_fleet(tmp_path: Path) -> None:
    """The old GPU hardware entry: idle power per allocated GPU becomes the idle power of
    every GPU of a powered node; elastic fleet_nodes become the pool's size."""
    doc = yaml.safe_load((REPO / "profiles" / "t2i_h100.yaml").read_text())
    (pool,) = doc.pop("pools")
    old = {"name": pool["device_name"], "device": "gpu", "devices_per_node": 8,
           "node_static_w": 1000.0, "device_idle_w": 75.0, "static_source": "node_static",
           "idle_source": "gpu_idle", "fleet": "elastic", "fleet_nodes": 4,
           "load_gb_per_s": 2.0, "load_source": "model_load"}
    v2 = {"format_version": 2, "hardware": old, **{k: v for k, v in doc.items()
                                                    if k != "format_version"}}
    new = migrated_document(tmp_path / "t2i.yaml", v2, pool_name="h100")
    assert new["pools"] == [pool]
    assert (pool["nodes"], pool["always_on"], pool["device_idle_w"], pool["allocated_w"]) == (
        4, 0, 75.0, 0.0)


def test_a_scale_beyond_the_whole_fleet_stops_the_evaluation(tmp_path: Path) -> None:
    """One node of 2 devices per pool serves at most 2 x 26.7 req/s: a window scaled far
    beyond it stops before any tuning, with one line naming trace_scale."""
    path = write_profile(two_pool_doc(1, nodes=1), tmp_path / "small.yaml")
    out = run(["evaluate.py", f"env.pipeline={path}", "policies=[ipa]", "seeds=[0]",
               "windows=[{name: big, pattern: steady_high, scale: 50.0}]",
               f"output_dir={tmp_path}"], REPO)
    assert out.returncode == 2, out.stderr
    assert "exceeds what the whole fleet serves (53.3 req/s" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_the_matched_policy_keeps_ipas_accuracy_and_spends_less(tmp_path: Path) -> None:
    """Every interval, the energy-aware ILP at IPA($)'s accuracy runs the model IPA($)
    chose (the stage's variants of equal accuracy: the same model on either pool) and
    plans no more energy than IPA($)'s decision at the planned rate."""
    import gymnasium

    from agents.policies.ipa import IPAPolicy
    from agents.policies.matched import MatchedEnergyPolicy

    path = write_profile(two_pool_doc(1), tmp_path / "one.yaml")
    env = gymnasium.make("ipa/Pipeline-v2", pipeline=str(path), workload="bursty",
                         backend="fluid", max_replicas=8, **{"workload.scale": 0.5,
                                                             "workload.window_s": 300})
    pipeline = env.unwrapped.pipeline
    ipa = IPAPolicy(env, beta=1.0, delta=0.0)
    matched = MatchedEnergyPolicy(env, beta=1.0, delta=0.0)
    obs, _ = env.reset(seed=1)
    for _ in range(20):
        rate = ipa.forecast_rps(obs)
        mine, theirs = matched.decide(obs), ipa.decide(obs)
        (a,), (b,) = mine.stages, theirs.stages
        stage = pipeline.stages[0]
        assert stage.variants[a.variant].accuracy == stage.variants[b.variant].accuracy
        assert power.interval_energy_j(pipeline, mine, rate * 10, 10) <= (
            power.interval_energy_j(pipeline, theirs, rate * 10, 10) + 1e-6)
        obs, _, _, _, _ = env.step(env.unwrapped.encode(mine))
    assert matched.matched == 20
