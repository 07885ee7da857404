"""Bad input, tried as a new user would: each case gets one clear error naming its key or
file and the fix, never a silent default (docs/faults.md lists them with these tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agents.policies import HpaPolicy, StaticPolicy
from agents.runs.train_config import load_train_config
from envs.backends.base import ServingSettings
from envs.config.errors import ActionError, ConfigError, ProfileError
from envs.config.loader import from_dict
from envs.config.yaml_io import read_yaml, read_yaml_file
from envs.env_config import EnvConfig
from envs.model.profiles import load_pipeline
from envs.pipeline_env import PipelineEnv
from tests.conftest import tiny_profile_doc


@pytest.mark.parametrize(("override", "message"), [
    ("env.cold_start_s=-5", "env.cold_start_s must be >= 0 s, got -5.0; 0 means"),
    ("env.drop_limit_s=0", "env.drop_limit_s must be > 0 s, got 0.0; null drops after 2 x SLA"),
    ("env.batch_timeout_ms=0", "env.batch_timeout_ms must be > 0 ms"),
    ("env.max_cores=0", "env.max_cores must be >= 1 cores, got 0; null means no budget"),
    ("env.sla_ms=-1", "env.sla_ms must be > 0 ms"),
    ("env.interval_s=0", "env.interval_s must be >= 1 s"),
    ("env.batch_sizes=[]", "env.batch_sizes must be a non-empty list of distinct sizes"),
    ("env.batch_sizes=[2, 2]", "env.batch_sizes must be a non-empty list of distinct sizes"),
    ("env.workload.seed=-1", "env.workload.seed must be >= 0"),
    ("env.workload.damping=0", "env.workload.damping must be > 0"),
    ("env.reward.energy=-1", "env.reward.energy must be >= 0"),
    ("env.reward.energy=.nan", "env.reward.energy: expected a finite number, got nan"),
    ("env.cold_start_s=.inf", "env.cold_start_s: expected a finite number, got inf"),
    ("agent.gamma=0", "agent.gamma must be > 0 and <= 1, got 0.0"),
    ("agent.gae_lambda=1.5", "agent.gae_lambda must be >= 0 and <= 1"),
    ("agent.target_kl=0", "agent.target_kl must be > 0"),
    ("run.seed=-1", "run.seed must be >= 0"),
    ("run.n_envs=0", "run.n_envs must be >= 1, got 0"),
    ("eval.start_s=-3", "eval.start_s must be >= 0 s"),
    ("tracking.project=''", "tracking.project must be a W&B project name"),
    ("env.workload.start_s=10", None),  # valid: a plain range start
])
def test_config_values_are_checked_at_load_with_their_dotted_key(override: str,
                                                                 message: str | None) -> None:
    if message is None:
        assert load_train_config(overrides=[override]).env.workload.start_s == 10
        return
    with pytest.raises(ConfigError) as info:
        load_train_config(overrides=[override])
    assert message in str(info.value)


def test_workload_end_before_start_names_both_keys() -> None:
    with pytest.raises(ConfigError, match=r"workload\.end_s \(5\) must be greater than "
                                          r"start_s \(10\)"):
        from_dict(EnvConfig, {"workload": {"start_s": 10, "end_s": 5}})


def test_explicit_limits_are_kept_not_replaced_by_defaults(tiny_pipeline) -> None:
    # `x or default` turned an explicit value like 0 into the default; None alone means
    # "derive from the SLA" (1000 ms SLA, 2 stages: drops after 2 s, batches leave at 250 ms)
    derived = ServingSettings.for_pipeline(tiny_pipeline)
    assert (derived.drop_limit_s, derived.batch_timeout_ms) == (2.0, 250.0)
    explicit = ServingSettings.for_pipeline(tiny_pipeline, drop_limit_s=0.0, batch_timeout_ms=0.0)
    assert (explicit.drop_limit_s, explicit.batch_timeout_ms) == (0.0, 0.0)


def test_core_budget_below_one_replica_per_stage_fails_at_construction(
        tiny_profile_path: Path) -> None:
    # each stage's cheapest variant needs 1 core: 2 stages need 2
    with pytest.raises(ConfigError, match=r"max_cores=1 is below one replica per stage.*"
                                          r"\(2 for tiny\); set max_cores >= 2 or null"):
        PipelineEnv(EnvConfig(pipeline=str(tiny_profile_path), max_cores=1))
    assert PipelineEnv(EnvConfig(pipeline=str(tiny_profile_path), max_cores=2)).action_masks(
    ).any()


def test_baseline_batch_zero_is_an_error_not_the_default(tiny_profile_path: Path) -> None:
    env = PipelineEnv(EnvConfig(pipeline=str(tiny_profile_path)))
    with pytest.raises(ActionError, match=r"batch 0 is not one of stage 'first''s batch sizes "
                                          r"\[1, 2, 4\]"):
        StaticPolicy(env, batch=0)
    with pytest.raises(ActionError, match="batch 3 is not one"):
        HpaPolicy(env, batch=3)
    with pytest.raises(ActionError, match=r"batch \[1, 2, 4\] has 3 sizes for 2 stages"):
        HpaPolicy(env, batch=(1, 2, 4))
    with pytest.raises(ActionError, match="batch 8 is not one of stage 'second'"):
        HpaPolicy(env, batch=(1, 8))
    assert StaticPolicy(env, batch=None).decision.stages[0].batch == 1
    assert StaticPolicy(env, batch=4).decision.stages[0].batch == 4
    per_stage = StaticPolicy(env, batch=(2, 4)).decision.stages
    assert [c.batch for c in per_stage] == [2, 4]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(stages=[]), "no stages; a profile lists its stages under 'stages:'"),
    (lambda d: d.pop("stages"), "no stages"),
    (lambda d: [d.pop(k) for k in ("stages", "sla_ms")], "no stages"),
    (lambda d: d["stages"][1].update(variants=[]), "stage 'second' has no variants"),
    (lambda d: d["stages"][0]["variants"][2].update(rows=[]),
     "variant 'large' of stage 'first' has no measured rows"),
])
def test_profile_errors_name_the_first_thing_wrong_in_user_terms(tmp_path: Path, change,
                                                                 message: str) -> None:
    doc = tiny_profile_doc()
    change(doc)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError) as info:
        load_pipeline(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "batch_sizes" not in str(info.value).split(";")[0]


@pytest.mark.parametrize("text", ["", "[1, 2]", "just text"])
def test_a_profile_that_is_not_a_mapping_says_so(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match="not a profile"):
        load_pipeline(path)


@pytest.mark.parametrize(("text", "needle"), [
    ("when: 2001-13-01", "month must be in 1..12"),   # PyYAML: ValueError
    ("x: !!timestamp nope", "malformed YAML"),         # PyYAML: AttributeError
    ("x: !!float abc", "could not convert string to float"),
    ("[" * 5000, "malformed YAML"),                    # PyYAML: RecursionError
])
def test_yaml_the_parser_chokes_on_is_a_config_error(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match="malformed YAML") as info:
        read_yaml(text, "f.yaml")
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_config_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match=r"c\.yaml cannot be read as UTF-8 text"):
        read_yaml_file(path)
