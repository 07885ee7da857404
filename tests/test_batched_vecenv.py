"""The batched fluid VecEnv: the same observations, rewards, episode ends and info as N
`PipelineEnv`s with the same seeds, step by step; its array forms of `envs.model.perf` against
the scalar functions; what it refuses; how training picks it."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from agents.runs.train_config import load_train_config
from agents.training import ppo, vec_envs
from envs.backends.base import weighted_quantile
from envs.batched import BatchedPipelineVecEnv, array_perf, kernels
from envs.batched.tables import Tables
from envs.config.errors import ActionError, ConfigError
from envs.env_config import EnvConfig
from envs.env_kwargs import config_from_kwargs
from envs.model import node_power, perf, power
from envs.model.spec import Pipeline
from envs.pipeline_env import PipelineEnv
from tests.conftest import tiny_profile_doc

N_ENVS = 4
STEPS = 300  # 2.5 episodes of 120 intervals: covers the automatic resets


def assert_same_step(ref: tuple, got: tuple, step: int) -> None:
    """One VecEnv step of N PipelineEnvs against one of the batched env."""
    (o1, r1, d1, i1), (o2, r2, d2, i2) = ref, got
    np.testing.assert_allclose(o2, o1, rtol=1e-12, atol=0, err_msg=f"obs, step {step}")
    np.testing.assert_allclose(r2, r1, rtol=1e-6, atol=1e-7, err_msg=f"reward, step {step}")
    np.testing.assert_array_equal(d2, d1, err_msg=f"dones, step {step}")
    for a, b in zip(i1, i2, strict=True):
        for f in fields(a["stats"]):
            if f.name == "latencies_ms":
                continue
            x, y = getattr(a["stats"], f.name), getattr(b["stats"], f.name)
            if isinstance(x, str):
                assert x == y, f"stats.{f.name}, step {step}"
                continue
            np.testing.assert_allclose(np.asarray(y, float), np.asarray(x, float), rtol=1e-12,
                                       equal_nan=True, err_msg=f"stats.{f.name}, step {step}")
            assert type(x) is type(y), f.name
        assert b["decision"] == a["decision"], step
        assert b["reward_terms"].keys() == a["reward_terms"].keys()
        for key, value in a["reward_terms"].items():
            assert math.isclose(b["reward_terms"][key], value, rel_tol=1e-12, abs_tol=1e-15), key
        assert math.isclose(b["forecast_rps"], a["forecast_rps"], rel_tol=1e-12)
        assert (b["repairs"], b["energy_estimated"], b["events"]) == (
            a["repairs"], a["energy_estimated"], a["events"])
        assert ("terminal_observation" in b) == ("terminal_observation" in a)
        if "terminal_observation" in a:
            np.testing.assert_allclose(b["terminal_observation"], a["terminal_observation"],
                                       rtol=1e-12)


def play_both(cfg: EnvConfig, steps: int = STEPS, seed: int = 3) -> int:
    """Step N PipelineEnvs and the batched env with the same random actions; returns
    how many episodes ended (so a test can check that resets were covered)."""
    ref = DummyVecEnv([lambda: PipelineEnv(cfg) for _ in range(N_ENVS)])
    got = BatchedPipelineVecEnv(cfg, N_ENVS)
    ref.seed(seed)
    got.seed(seed)
    np.testing.assert_allclose(got.reset(), ref.reset(), rtol=1e-12)
    for a, b in zip(ref.reset_infos, got.reset_infos, strict=True):
        assert a == b
    rng = np.random.default_rng(seed)
    nvec = ref.action_space.nvec
    ends = 0
    for step in range(steps):
        actions = rng.integers(nvec, size=(N_ENVS, len(nvec)))
        out_ref, out_got = ref.step(actions), got.step(actions)
        assert_same_step(out_ref, out_got, step)
        ends += int(out_ref[2].sum())
    ref.close()
    got.close()
    return ends


SCENARIOS = {
    "absolute": {},
    "headroom": {"action_mode": "headroom"},
    "saturated_long_cold_start": {"workload": "steady_high", "cold_start_s": 10},
    "budget_repairs": {"max_cores": 30, "cold_start_s": 2.5},
    "headroom_budget": {"action_mode": "headroom", "max_cores": 20,
                        "workload": "fluctuating"},
    "elastic_no_cold_start": {"fleet": "elastic", "cold_start_s": 0},
    "no_warm_up": {"workload.warmup_s": 0},
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_pipeline_envs_step_by_step(name: str) -> None:
    cfg = config_from_kwargs(None, dict(SCENARIOS[name]))
    assert play_both(cfg) == 2 * N_ENVS


def test_matches_on_the_tiny_pipeline_with_timeouts(tiny_profile_path: Path) -> None:
    cfg = config_from_kwargs(None, {"pipeline": str(tiny_profile_path),
                                    "batch_timeout_ms": 50.0, "max_replicas": 6,
                                    "workload.window_s": 300})
    assert play_both(cfg, steps=200) > 0


def test_matches_with_per_stage_knob_values(tmp_path: Path) -> None:
    """Stages with different batch lists (3 and 2 values): the padded tables are never
    read past a stage's own list."""
    doc = tiny_profile_doc()
    doc["stages"][1]["batch_sizes"] = [2, 4]
    path = tmp_path / "knobs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    cfg = config_from_kwargs(None, {"pipeline": str(path), "batch_timeout_ms": 50.0,
                                    "max_replicas": 6, "workload.window_s": 300})
    assert PipelineEnv(cfg).action_space.nvec.tolist()[1::3] == [3, 2]
    assert play_both(cfg, steps=200) > 0


@pytest.mark.parametrize(("profile", "scale", "mode"), [
    ("llm_chat_h100_cb", 0.3, "absolute"), ("chat_to_image_h100_cb", 0.03, "headroom")])
def test_matches_with_a_continuously_batched_stage(profile: str, scale: float,
                                                   mode: str) -> None:
    """A chat stage served by continuous batching: the load tables read per second, in
    arrays, as `FluidBackend` reads them one second at a time."""
    cfg = config_from_kwargs(None, {"pipeline": profile, "model_load_scale": 0,
                                    "workload": "bursty", "workload.scale": scale,
                                    "action_mode": mode})
    assert play_both(cfg, steps=150) == N_ENVS


def test_matches_with_warm_up_off_the_interval_grid(tmp_path: Path) -> None:
    """A warm-up that is not a multiple of the interval and longer than the predictor's
    history (the observation's chunks are cut back from "now", and the history is cut at
    PREDICTOR_HISTORY_S), taken from the seconds before ``start_s`` of a trace file
    scaled by a fraction, with an interval that does not divide PREDICTOR_HISTORY_S."""
    rates = np.random.default_rng(5).integers(0, 40, 4000)
    trace = tmp_path / "trace.txt"
    trace.write_text("\n".join(str(x) for x in rates))
    cfg = config_from_kwargs(None, {"workload": str(trace), "workload.start_s": 700,
                                    "workload.warmup_s": 655, "workload.scale": 0.37,
                                    "interval_s": 7, "workload.window_s": 294,
                                    "cold_start_s": 3.0})
    assert PipelineEnv(cfg).warmup.size == 655
    assert play_both(cfg, steps=100) == 2 * N_ENVS


def test_matches_with_synthetic_warm_up_off_the_grid() -> None:
    cfg = config_from_kwargs(None, {"workload.warmup_s": 615, "workload": "bursty"})
    assert play_both(cfg, steps=130) == N_ENVS


def test_repairs_are_counted_like_the_scalar_env() -> None:
    cfg = config_from_kwargs(None, {"max_cores": 12})
    env = BatchedPipelineVecEnv(cfg, 2)
    env.seed(0)
    env.reset()
    top = env.action_space.nvec - 1  # largest variant, batch and replica count everywhere
    _, _, _, infos = env.step(np.stack([top, top]))
    assert infos[0]["repairs"] > 0
    assert perf.decision_cores(infos[0]["decision"]) <= 12


# -- array forms of envs.model.perf against the scalar functions -----------------------------------
def test_fill_and_backlog_delays_match_perf() -> None:
    for b in (1, 2, 8):
        for rate in (0.0, -1.0, 0.5, 3.0, 1e4):
            for timeout in (math.inf, 50.0, 1e9):
                got = array_perf.batch_fill_delay_ms(np.array([b]), np.array([rate]), timeout)
                assert got[0] == perf.batch_fill_delay_ms(b, rate, timeout), (b, rate, timeout)
    for q in (0.0, -2.0, 3.5, 1e3):
        for tp in (0.0, 1.0, 77.7):
            got = array_perf.backlog_delay_ms(np.array([q]), np.array([tp]))
            assert got[0] == perf.backlog_delay_ms(q, tp), (q, tp)


def test_energy_per_request_matches_perf(tiny_pipeline: Pipeline) -> None:
    tables = Tables.for_pipeline(tiny_pipeline)
    n_v = tables.throughput_rps.shape[1]
    for s, stage in enumerate(tiny_pipeline.stages):
        for v, variant in enumerate(stage.variants):
            for b in stage.batch_sizes:
                for rate in (0.0, 1.0, 7.3, 33.0, 1e5):
                    for timeout in (math.inf, 10.0, 120.0):
                        got = array_perf.energy_per_request_j(
                            tables.energy_by_batch, np.array([s * n_v + v]), np.array([b]),
                            np.array([rate]), timeout)[0]
                        want = power.energy_per_request_j(variant, b, variant.base_cores,
                                                         rate, timeout)
                        assert got == want, (s, v, b, rate, timeout)
                        k = array_perf.expected_batch_size(np.array([b]), np.array([rate]),
                                                           timeout)[0]
                        assert k == power.expected_batch_size(b, rate, timeout)


def test_powered_nodes_matches_perf(tiny_pipeline: Pipeline) -> None:
    devices = np.array([0, 1, 3, 4, 5, 8, 9, 40])
    for always_on in (1, 3, 0):
        pool = replace(tiny_pipeline.fleet.pools[0], always_on=always_on)
        want = [node_power.powered_nodes(pool, float(d)) for d in devices]
        assert array_perf.powered_nodes(pool, devices).tolist() == want


def test_replicas_for_rate_matches_perf(tiny_pipeline: Pipeline) -> None:
    variant = tiny_pipeline.stages[0].variants[1]
    for b in tiny_pipeline.stages[0].batch_sizes:
        tp = perf.replica_throughput_rps(variant, b, 1)
        rates = np.array([0.0, 0.3, tp, 2 * tp, 3 * tp - 1e-12, 3 * tp + 1e-9, 123.4])
        got = array_perf.replicas_for_rate(np.full(len(rates), tp), rates)
        assert got.tolist() == [perf.replicas_for_rate(variant, b, 1, r) for r in rates]


def test_weighted_quantile_kernel_matches_the_scalar() -> None:
    rng = np.random.default_rng(0)
    cases = [([3.0, 1.0, 2.0], [0.0, 0.0, 0.0]), ([5.0] * 10, [2.0] * 10),
             ([1.0, 2.0] * 5, [1.0] * 10), ([4.0, 4.0, 1.0], [0.1, 0.2, 0.7])]
    cases += [(rng.integers(0, 4, 10).astype(float).tolist(),
               rng.choice([0.0, 1.0, 2.5], 10).tolist()) for _ in range(200)]
    for values, weights in cases:
        for q in (0.5, 0.99):
            got = kernels.weighted_quantile(np.array(values), np.array(weights), q)
            want = weighted_quantile(values, weights, q)
            assert (math.isnan(got) and math.isnan(want)) or got == want, (values, weights)


# -- what it refuses, and how training picks it --------------------------------------------
@pytest.mark.parametrize("change, words", [
    ({"backend": "requests"}, "backend"),
    ({"predictor": "lstm", "predictor_path": "missing.pt"}, "predictor"),
])
def test_unsupported_configs_raise_config_error(change: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        BatchedPipelineVecEnv(replace(EnvConfig(), **change), 2)
    assert "run.vec_env=dummy" in str(err.value)


def test_out_of_range_action_raises_action_error() -> None:
    env = BatchedPipelineVecEnv(EnvConfig(), 2)
    env.seed(0)
    env.reset()
    bad = np.tile(env.action_space.nvec, (2, 1))  # one past the last value everywhere
    with pytest.raises(ActionError, match="triple"):
        env.step(bad)


def test_training_uses_the_batched_env_for_fluid_and_dummy_otherwise(tmp_path: Path) -> None:
    cfg = load_train_config(overrides=["run.n_envs=2", "agent.n_steps=64",
                                       "agent.batch_size=64"])
    assert vec_envs.vec_env_kind(cfg, cfg.env) == "batched"
    venv = vec_envs.make_training_vec_env(cfg, cfg.env, seed=0)
    assert isinstance(venv, VecMonitor) and isinstance(venv.venv, BatchedPipelineVecEnv)
    venv.close()
    requests = replace(cfg.env, backend="requests")
    assert vec_envs.vec_env_kind(cfg, requests) == "dummy"
    forced = load_train_config(overrides=["run.vec_env=batched", "env.backend=requests",
                                          "run.n_envs=2", "agent.n_steps=64",
                                          "agent.batch_size=64"])
    with pytest.raises(ConfigError, match="run.vec_env=batched"):
        ppo.prepare(forced)
    dummy = load_train_config(overrides=["run.vec_env=dummy"])
    assert vec_envs.vec_env_kind(dummy, dummy.env) == "dummy"


def test_action_masks_through_env_method() -> None:
    cfg = config_from_kwargs(None, {"max_cores": 20})
    env = BatchedPipelineVecEnv(cfg, 3)
    masks = env.env_method("action_masks")
    want = PipelineEnv(cfg).action_masks()
    assert len(masks) == 3 and all(np.array_equal(m, want) for m in masks)
    assert not want.all()  # the budget masks some replica counts
    with pytest.raises(AttributeError, match="action_masks"):
        env.env_method("decode", np.zeros(6))
    assert env.has_attr("action_masks")  # what sb3-contrib's MaskablePPO checks


def test_forms_chosen_by_what_the_three_groups_cannot_hold() -> None:
    """Three groups per stage where every added replica serves within the interval; per-env
    groups for long cold starts, size-dependent loads and node power states."""
    from envs.batched.fluid import BatchedFluid
    from envs.batched.groups import BatchedGroupFluid

    def form(**change: object) -> type:
        return type(BatchedPipelineVecEnv(replace(EnvConfig(), **change), 1).fluid)

    assert form() is BatchedFluid
    assert form(cold_start_s=12.0) is BatchedGroupFluid
    assert form(pipeline="chat_to_image_h100") is BatchedGroupFluid  # loads its weights
    assert form(pipeline="chat_to_image_h100", model_load_scale=0.0) is BatchedFluid
    assert form(pipeline="chat_to_image_h100", model_load_scale=0.0,
                node_boot_s=60.0) is BatchedGroupFluid


@pytest.mark.parametrize("change", [
    {"cold_start_s": 25.0, "workload": "bursty"},
    {"pipeline": "chat_to_image_h100", "workload.scale": 0.03, "workload": "bursty"},
])
def test_matches_with_replicas_that_start_after_the_interval(change: dict) -> None:
    """Cold starts of 25 s and the GPU weights' load times (4.5-32 s) span intervals."""
    cfg = config_from_kwargs(None, dict(change))
    assert play_both(cfg, steps=130) == N_ENVS


@pytest.mark.parametrize(("boot", "hold", "mode"), [(60.0, 30.0, "absolute"),
                                                    (0.0, 45.0, "headroom"),
                                                    (240.0, 0.0, "absolute")])
def test_matches_with_node_power_states(boot: float, hold: float, mode: str) -> None:
    """The A100 + H100 fleet (two elastic pools) with nodes that boot and hold: replicas
    wait for boots across many intervals, held nodes draw power, both as `FluidBackend`."""
    cfg = config_from_kwargs(None, {"pipeline": "llm_chat_a100_h100_tight",
                                    "workload": "bursty", "workload.scale": 4.0,
                                    "max_replicas": 12, "node_boot_s": boot,
                                    "node_hold_s": hold, "action_mode": mode})
    ref = PipelineEnv(cfg)
    assert any(p.boot_s == boot and p.hold_s == hold for p in ref.pipeline.fleet.pools)
    assert play_both(cfg, steps=130) == N_ENVS
