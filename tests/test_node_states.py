"""Node power states (`envs.backends.nodes`): a node boots before it serves and is held on
before it powers off; the same rule in both simulators; by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs.backends.base import ServingSettings
from envs.backends.fluid import FluidBackend
from envs.backends.requests import RequestBackend
from envs.batched import BatchedPipelineVecEnv
from envs.config.errors import ConfigError
from envs.env_kwargs import config_from_kwargs
from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import profile_document, variant_entry, write_profile
from envs.model.profiles import load_pipeline
from envs.model.spec import Decision, Pipeline, StageDecision

ROWS = [[1, 1, 100.0, 100.0, 2.0, "lat", "en"], [2, 1, 150.0, 150.0, 3.0, "lat", "en"]]
BACKENDS = [FluidBackend, RequestBackend]
SETTINGS = ServingSettings(interval_s=10, cold_start_s=2.0, drop_limit_s=60.0)


def states_profile(tmp_path: Path, boot_s: float = 30.0, hold_s: float = 20.0) -> Path:
    """One stage on one pool of 2-device nodes: 100 W host + 2 x 10 W idle per node."""
    pool = pool_entry("gpu", "test GPU", device="gpu", devices_per_node=2, nodes=4,
                      always_on=0, node_static_w=100.0, device_idle_w=10.0, boot_s=boot_s,
                      hold_s=hold_s, sources={"node_static_w": "s", "device_idle_w": "s",
                                              "boot_s": "s", "hold_s": "s"})
    doc = profile_document(
        "states", sla_ms=5000.0, batch_sizes=[1, 2], pools=[pool],
        sources={k: {"kind": "assumed", "description": "made up for tests"}
                 for k in ("s", "lat", "en")},
        stages=[{"name": "only", "variants": [
            variant_entry("a", 70.0, ROWS, metric="top-1 (%)", source="t", base_cores=1),
            variant_entry("b", 80.0, ROWS, metric="top-1 (%)", source="t", base_cores=1)]}])
    return write_profile(doc, tmp_path / f"states_{boot_s:g}_{hold_s:g}.yaml")


def replicas(n: int, variant: int = 0) -> Decision:
    return Decision((StageDecision(variant, 1, n, 1),))


def node_seconds(stats, pipeline: Pipeline) -> float:
    """Powered node-seconds of an interval, from its static energy (100 W per node)."""
    assert stats.idle_j == pytest.approx(stats.static_j * 2 * 10.0 / 100.0)
    return stats.static_j / 100.0


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_a_scale_up_waits_for_the_boot_and_an_idle_node_is_held(tmp_path: Path,
                                                                backend_cls) -> None:
    """1 replica warm (1 node). At 10 s, 3 replicas need a second node: it boots until
    40 s, and the two new replicas start their 2-s cold start then (serving at 42 s).
    At 20 s, back to 1 replica: the second node is no longer needed and is held 20 s
    (booting or not) until 40 s, then off."""
    pipeline = load_pipeline(states_profile(tmp_path))
    sim = backend_cls(pipeline, SETTINGS)
    sim.reset(replicas(1), seed=0)
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(10.0)
    sim.apply(replicas(3))
    new = [g for g in sim.groups[0] if g.allocated_s == 10.0]
    assert [(g.count, g.online_s) for g in new] == [(2, 42.0)]
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(20.0)
    sim.apply(replicas(1))
    seconds = [node_seconds(sim.run_interval(np.zeros(10)), pipeline) for _ in range(3)]
    assert seconds == pytest.approx([20.0, 20.0, 10.0])  # held 20-40 s, off at 40 s


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_a_held_node_serves_again_without_a_boot(tmp_path: Path, backend_cls) -> None:
    """3 replicas warm (2 nodes); 1 replica at 10 s holds the second node until 30 s;
    3 replicas again at 20 s take it back: no boot, the usual 2-s cold start."""
    pipeline = load_pipeline(states_profile(tmp_path))
    sim = backend_cls(pipeline, SETTINGS)
    sim.reset(replicas(3), seed=0)
    sim.run_interval(np.zeros(10))
    sim.apply(replicas(1))
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(20.0)
    sim.apply(replicas(3))
    assert max(g.online_s for g in sim.groups[0]) == pytest.approx(22.0)
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(20.0)


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_a_rolling_update_onto_a_booting_node_keeps_the_old_replicas(tmp_path: Path,
                                                                     backend_cls) -> None:
    """2 replicas of a warm (1 node). Switching to 2 of b at 10 s holds 4 devices during
    the update: a second node boots until 40 s; b serves at 42 s and a serves until then."""
    pipeline = load_pipeline(states_profile(tmp_path))
    sim = backend_cls(pipeline, SETTINGS)
    sim.reset(replicas(2, 0), seed=0)
    sim.run_interval(np.zeros(10))
    sim.apply(replicas(2, 1))
    old = [g for g in sim.groups[0] if g.variant == 0]
    new = [g for g in sim.groups[0] if g.variant == 1]
    assert [g.until_s for g in old] == [42.0] and [g.online_s for g in new] == [42.0]
    # 2 nodes (one booting) for 10 s in each of the next three intervals, then the
    # old replicas go at 42 s: 2 nodes for 2 s and the freed node held 20 s more
    seconds = [node_seconds(sim.run_interval(np.zeros(10)), pipeline) for _ in range(5)]
    assert seconds == pytest.approx([20.0, 20.0, 20.0, 20.0, 20.0])
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(12.0)


def test_without_boot_or_hold_nodes_follow_the_allocation(tmp_path: Path) -> None:
    pipeline = load_pipeline(states_profile(tmp_path, 0.0, 0.0))
    sim = RequestBackend(pipeline, SETTINGS)
    sim.reset(replicas(1), seed=0)
    sim.run_interval(np.zeros(10))
    sim.apply(replicas(3))
    assert max(g.online_s for g in sim.groups[0]) == pytest.approx(12.0)
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(20.0)
    sim.apply(replicas(1))
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(10.0)


def test_the_batched_env_runs_power_states_on_replica_groups(tmp_path: Path) -> None:
    """This module's profile (boots and holds) steps in the batched env on per-env replica
    groups, equal to N `PipelineEnv`s (`tests.test_batched_vecenv.play_both`)."""
    from envs.batched.groups import BatchedGroupFluid
    from tests.test_batched_vecenv import N_ENVS, play_both

    cfg = config_from_kwargs(None, {"pipeline": str(states_profile(tmp_path)),
                                    "workload.window_s": 300})
    assert isinstance(BatchedPipelineVecEnv(cfg, 2).fluid, BatchedGroupFluid)
    assert play_both(cfg, steps=60) == 2 * N_ENVS


def booting_two_pools(tmp_path: Path, boot_s: float) -> tuple[Pipeline, int, int]:
    """The two-pool stage of test_fleet_pools with nodes that boot in ``boot_s``: the
    pipeline and its slow and fast variants' indices."""
    from tests.test_fleet_pools import two_pool_doc, variant_index

    doc = two_pool_doc(1)
    for pool in doc["pools"]:
        pool.update(boot_s=boot_s)
        pool["sources"]["boot_s"] = "host"
    pipeline = load_pipeline(write_profile(doc, tmp_path / f"boot{boot_s:g}.yaml"))
    return pipeline, variant_index(pipeline, 0, "slow"), variant_index(pipeline, 0, "fast")


def test_the_energy_aware_ilp_counts_a_boot(tmp_path: Path) -> None:
    """The two-pool stage of test_fleet_pools at 15 req/s: the fast pool's node costs
    10 x 140 + 150 x 1.25 = 1587.5 J, the slow pool's 10 x 120 + 150 x 3 = 1650 J. With a
    60-s boot and only a slow node on, the fast one costs 140 W x 60 s = 8400 J more: the
    ILP stays on slow; with a fast node on, it takes fast; with none on, booting a slow
    node (120 W x 60 s = 7200 J) is the cheaper start."""
    from ipa_baseline import solve_ipa
    pipeline, slow, fast = booting_two_pools(tmp_path, 60.0)
    kwargs = {"alpha": 1.0, "beta": 0.0, "gamma": 0.0, "delta": 1.0}
    stay = solve_ipa(pipeline, 15.0, nodes_on=(1, 0), **kwargs)
    assert stay.decision.stages[0].variant == slow
    assert stay.predicted_energy_j == pytest.approx(1650.0)
    move = solve_ipa(pipeline, 15.0, nodes_on=(1, 1), **kwargs)
    assert move.decision.stages[0].variant == fast
    cold = solve_ipa(pipeline, 15.0, nodes_on=(0, 0), **kwargs)
    assert cold.decision.stages[0].variant == slow
    assert cold.predicted_energy_j == pytest.approx(1650.0 + 120.0 * 60.0)
    assert solve_ipa(pipeline, 15.0, **kwargs).decision.stages[0].variant == fast


def test_an_env_override_sets_every_pools_boot_and_hold(tmp_path: Path) -> None:
    from envs.env_pipeline import env_pipeline

    path = states_profile(tmp_path, 0.0, 0.0)
    cfg = config_from_kwargs(None, {"pipeline": str(path), "node_boot_s": 120.0,
                                    "node_hold_s": 30.0})
    (pool,) = env_pipeline(cfg).fleet.pools
    assert (pool.boot_s, pool.hold_s) == (120.0, 30.0)
    with pytest.raises(ConfigError, match="node_boot_s"):
        config_from_kwargs(None, {"pipeline": str(path), "node_boot_s": -1.0})


def test_the_mpc_amortises_a_boot_over_its_horizon(tmp_path: Path) -> None:
    """The two-pool stage at 15 req/s with a 1-s boot and only a slow node on: the fast
    node saves 62.5 J per interval and costs 140 J to boot. Planning one interval, the boot
    is not worth it (1587.5 + 140 > 1650); planning three, it is (3 x 1587.5 + 140 =
    4902.5 < 3 x 1650 = 4950)."""
    from ipa_baseline import solve_ipa
    from ipa_baseline.mpc import solve_mpc
    pipeline, slow, fast = booting_two_pools(tmp_path, 1.0)
    kwargs = {"alpha": 1.0, "beta": 0.0, "gamma": 0.0, "delta": 1.0, "cold_start_s": 0.0,
              "model_load_scale": 0.0, "nodes_on": (1, 0)}
    one = solve_mpc(pipeline, [15.0], None, horizon=1, **kwargs)
    assert one.decision.stages[0].variant == slow
    ilp = solve_ipa(pipeline, 15.0, alpha=1.0, beta=0.0, gamma=0.0, delta=1.0,
                    replica_mode="free", nodes_on=(1, 0))
    assert one.objective == pytest.approx(ilp.objective)
    three = solve_mpc(pipeline, [15.0] * 3, None, horizon=3, **kwargs)
    assert [d.stages[0].variant for d in three.plan] == [fast] * 3
    assert three.objective == pytest.approx(3 * 1.0 - 3 * 1587.5 - 140.0)


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_a_booting_node_released_before_it_is_ready_is_forgotten(tmp_path: Path,
                                                                 backend_cls) -> None:
    """Boot 30 s, hold 5 s. At 10 s a second node boots (ready at 40 s); at 20 s it is no
    longer needed and is off at 25 s; at 30 s a switch to b that fits the first node (1 + 1
    devices) starts its cold start at once: b serves at 32 s, not after the dead boot."""
    pipeline = load_pipeline(states_profile(tmp_path, 30.0, 5.0))
    sim = backend_cls(pipeline, SETTINGS)
    sim.reset(replicas(1), seed=0)
    sim.run_interval(np.zeros(10))
    sim.apply(replicas(3))
    sim.run_interval(np.zeros(10))
    sim.apply(replicas(1))
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(15.0)
    sim.apply(replicas(1, 1))
    assert [g.online_s for g in sim.groups[0] if g.variant == 1] == [32.0]
    assert node_seconds(sim.run_interval(np.zeros(10)), pipeline) == pytest.approx(10.0)
