"""A residual agent (``agent.residual``) end to end: train.py trains it on
`ResidualPlannerEnv`s, evaluate.py plays its run folder as ``residual`` next to IPA, its null
action plays exactly IPA's decisions through the evaluation's episode loop, and each
misconfiguration is one line naming the key and the fix."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from gymnasium import spaces

from agents.evaluation.compare import evaluate
from agents.evaluation.config import EvalConfig, IpaWeights
from agents.evaluation.episode import run_episode
from agents.evaluation.registry import ipa_family_kwargs, policy_factories
from agents.evaluation.setup import eval_config_from_flags
from agents.policies.protocol import Policy
from agents.policies.residual_agent import ResidualAgentPolicy, planner_kwargs, residual_env
from agents.policies.residual_env import DEFAULT_MARGIN_LEVELS, DEFAULT_RATE_LEVELS
from agents.runs.residual_config import ResidualPlannerConfig
from agents.runs.train_config import AgentConfig, load_train_config
from agents.training.vec_envs import make_training_vec_env, vec_env_kind
from envs.config.errors import ConfigError, IpaEnergyError
from envs.config.loader import load_config
from envs.env_config import EnvConfig
from envs.pipeline_env import PipelineEnv
from tests.conftest import tiny_profile_doc

ROOT = Path(__file__).resolve().parents[1]
# 2 envs x 64 steps = one rollout of 128; two rollouts; small nets
TINY = ["agent.residual=true", "agent.n_steps=64", "agent.batch_size=64", "agent.n_epochs=2",
        "agent.net_arch=[16]", "run.n_envs=2", "run.n_eval_episodes=2",
        "run.progress_bar=false", "run.total_timesteps=256", "run.eval_freq=128",
        "run.checkpoint_freq=128", "tracking.mode=disabled"]
VIDEO = ["pipeline=video", "workload.scale=2.0", "workload.window_s=300"]


class FixedAction:
    """A `Policy` that always answers the same residual action (and counts its calls)."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = np.asarray(action)
        self.calls = 0

    def predict(self, observation: np.ndarray, state: object = None,
                episode_start: object = None, deterministic: bool = True
                ) -> tuple[np.ndarray, None]:
        self.calls += 1
        return self.action.copy(), None


def run_cli(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_profile_doc(), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def residual_run(profile: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    proc = run_cli("train.py", [f"env.pipeline={profile}", f"run.output_dir={out}",
                                "run.name=res", *TINY], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "res"


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "match"), [
    (["env.action_mode=headroom"], "agent.residual .*set env.action_mode=absolute"),
    (["run.vec_env=batched"], "run.vec_env=batched cannot host agent.residual"),
    (["agent.residual_rate_levels=[0.9, 1.1]"], r"agent.residual_rate_levels .* lack 1.0"),
    (["agent.residual_rate_levels=[]"], "agent.residual_rate_levels is empty"),
    (["agent.residual_margin_levels=[1.0, 1.2]"],
     r"agent.residual_margin_levels .* outside \(0, 1\]"),
    (["agent.masked=true"], "agent.masked .*set agent.masked=false"),
    (["agent.residual_planner.delta=-1"], "agent.residual_planner.delta must be >= 0"),
    (["agent.residual_planner.mod=sum"], "did you mean"),
])
def test_each_bad_residual_setting_is_one_line(extra: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        load_train_config(overrides=["agent.residual=true", *extra])
    assert "\n" not in str(err.value)


def test_levels_are_checked_even_while_residual_is_off() -> None:
    with pytest.raises(ConfigError, match="agent.residual_margin_levels .* lack 1.0"):
        load_train_config(overrides=["agent.residual_margin_levels=[0.9]"])


def test_residual_settings_default_to_the_wrapper_and_the_evaluations_ipa() -> None:
    agent = AgentConfig()
    assert agent.residual is False
    assert agent.residual_rate_levels == DEFAULT_RATE_LEVELS
    assert agent.residual_margin_levels == DEFAULT_MARGIN_LEVELS
    kwargs = planner_kwargs(agent)
    # the evaluation's ipa: IpaWeights' weights and infeasibility rule, no energy term
    assert {k: kwargs[k] for k in ("mode", "alpha", "beta", "gamma", "rules")} == \
        ipa_family_kwargs(EvalConfig())
    assert kwargs["delta"] == 0.0 and kwargs["use_batch_timeout"] is False
    weights, planner = IpaWeights(), ResidualPlannerConfig()
    assert (planner.mode, planner.alpha, planner.beta, planner.gamma, planner.on_infeasible) \
        == (weights.mode, weights.alpha, weights.beta, weights.gamma, weights.on_infeasible)


def test_auto_vectorisation_steps_residual_envs_one_by_one(profile: Path, tmp_path: Path
                                                           ) -> None:
    plain = load_train_config(overrides=[f"env.pipeline={profile}", *TINY[1:]])
    residual = load_train_config(overrides=[f"env.pipeline={profile}", *TINY])
    assert vec_env_kind(plain, plain.env) == "batched"
    assert vec_env_kind(residual, residual.env) == "dummy"
    venv = make_training_vec_env(residual, residual.env, seed=0)
    assert isinstance(venv.action_space, spaces.MultiDiscrete)
    n_stages = len(PipelineEnv(residual.env).pipeline.stages)
    assert venv.action_space.nvec.tolist() == [len(DEFAULT_RATE_LEVELS),
                                               len(DEFAULT_MARGIN_LEVELS)] + [2] * n_stages
    venv.reset()
    _, _, _, infos = venv.step(np.array([[2, 0] + [0] * n_stages] * 2))
    assert all("planner_decision" in info for info in infos)
    venv.close()


# -- training and evaluation -----------------------------------------------------------------
def test_the_run_folder_keeps_the_residual_settings(residual_run: Path) -> None:
    for name in ("config.yaml", "model.zip", "vecnormalize.pkl", "metrics.csv",
                 "summary.json"):
        assert (residual_run / name).is_file(), name
    cfg = load_train_config(residual_run / "config.yaml")
    assert cfg.agent.residual and cfg.agent.residual_planner == ResidualPlannerConfig()
    assert cfg.agent.residual_rate_levels == DEFAULT_RATE_LEVELS
    with (residual_run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert any(r.get("eval/mean_reward") for r in rows)  # validation played the agent
    assert max(int(r["step"]) for r in rows) == 256


def test_evaluate_plays_the_folder_as_residual_next_to_ipa(residual_run: Path, profile: Path,
                                                          tmp_path: Path) -> None:
    config = {
        "name": "res", "env": {"pipeline": str(profile), "backend": "requests"},
        "windows": [{"name": "bursty", "pattern": "bursty", "window_s": 300},
                    {"name": "steady_low", "pattern": "steady_low", "window_s": 300}],
        "seeds": [0], "policies": ["ipa", "residual"],
        "output_dir": str(tmp_path / "reports"), "tracking": {"mode": "disabled"},
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_cli("evaluate.py", ["--config", str(path), "--agent", str(residual_run)],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = tmp_path / "reports" / "res"
    with (report / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["policy"], r["workload"]) for r in rows} == {
        (p, w) for p in ("ipa", "residual") for w in ("bursty", "steady_low")}
    with (report / "paired.csv").open() as f:
        paired = list(csv.DictReader(f))
    assert {r["policy"] for r in paired} == {"residual"}  # paired against IPA
    assert all(r["unit"] == "window" for r in paired)  # one training seed: windows are units


def test_an_agent_of_the_other_kind_is_one_line(residual_run: Path, profile: Path,
                                                 tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({"env": {"pipeline": str(profile)}}))
    with pytest.raises(IpaEnergyError, match="name 'residual' in policies instead") as err:
        eval_config_from_flags(config, None, [residual_run], ["policies=[ipa, ppo]"])
    assert "\n" not in str(err.value)
    chosen = eval_config_from_flags(config, None, [residual_run], ["policies=[ipa]"])
    assert chosen.policies == ("residual", "ipa")  # like ppo: the agent's kind is added
    ppo_agent = [ROOT / "results" / "agents" / "video_s0"]
    with pytest.raises(IpaEnergyError, match="is a ppo agent .*name 'ppo' in policies") as err:
        eval_config_from_flags(ROOT / "configs" / "eval" / "ipa_windows.yaml", None, ppo_agent,
                               ["policies=[ipa, residual]"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="policy 'residual' needs --agent"):
        next(evaluate(EvalConfig(policies=("ipa", "residual")), tmp_path, None, []))


# -- the adapter -----------------------------------------------------------------------------
def play(policy: object, env: PipelineEnv, seed: int) -> list:
    episode = run_episode(env, policy, "p", "w", seed)
    return [(s.decision, s.reward, s.stats.energy_j) for s in episode.steps]


@pytest.mark.parametrize("backend", ["fluid", "requests"])
def test_the_null_action_plays_exactly_ipas_decisions(backend: str) -> None:
    env_cfg = load_config(EnvConfig, None, [*VIDEO, f"backend={backend}"])
    env = PipelineEnv(env_cfg)
    agent = AgentConfig(residual=True)
    ipa = policy_factories(EvalConfig(env=env_cfg), {}, 0.0, ("ipa",))["ipa"](env)
    expected = play(ipa, env, seed=3)
    null = FixedAction(residual_env(PipelineEnv(env_cfg), agent).null_action())
    adapter = ResidualAgentPolicy(env, null, agent)
    assert isinstance(adapter, Policy)
    assert play(adapter, env, seed=3) == expected
    assert null.calls == len(expected) == 30
    assert len({d for d, _, _ in expected}) > 1  # IPA adapted, so equality means something
    assert (adapter.fallbacks, adapter.kept) == (ipa.fallbacks, ipa.kept)
    # the action is used: planning for 1.5x the forecast deploys more replicas somewhere
    more = FixedAction(null.action)
    more.action[0] = DEFAULT_RATE_LEVELS.index(1.5)
    bigger = play(ResidualAgentPolicy(env, more, agent), env, seed=3)
    assert [d for d, _, _ in bigger] != [d for d, _, _ in expected]
