"""The strict config loader: unknown keys, wrong types, overrides, cross-field checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.config.errors import ConfigError
from envs.config.loader import apply_overrides, from_dict, load_config, to_dict
from envs.config.yaml_io import read_yaml
from envs.env_config import REWARD_PRESETS, EnvConfig


def test_defaults_round_trip_through_yaml_form() -> None:
    config = EnvConfig()
    assert from_dict(EnvConfig, to_dict(config)) == config


def test_unknown_key_names_dotted_path_and_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'reward\.energi'.*did you mean 'energy'"):
        from_dict(EnvConfig, {"reward": {"energi": 1.0}})


def test_string_where_number_expected_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"reward\.energy: expected a number, got 'lots'"):
        from_dict(EnvConfig, {"reward": {"energy": "lots"}})


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ConfigError, match="max_replicas: expected an integer"):
        from_dict(EnvConfig, {"max_replicas": True})


def test_scientific_notation_reads_as_float() -> None:
    assert read_yaml("lr: 3e-4")["lr"] == pytest.approx(3e-4)
    config = from_dict(EnvConfig, read_yaml("reward: {energy: 2e0}"))
    assert config.reward.energy == 2.0


def test_literal_rejects_unknown_choice_with_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'fluid'"):
        from_dict(EnvConfig, {"backend": "fluidd"})


def test_overrides_go_through_the_same_loader() -> None:
    data = apply_overrides({}, ["reward.energy=2.5", "workload.pattern=steady_low",
                                "batch_sizes=[1, 2]"])
    config = from_dict(EnvConfig, data)
    assert config.reward.energy == 2.5
    assert config.workload.pattern == "steady_low"
    assert config.batch_sizes == (1, 2)
    with pytest.raises(ConfigError, match="unknown key 'reward.bogus'"):
        from_dict(EnvConfig, apply_overrides({}, ["reward.bogus=1"]))
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        apply_overrides({}, ["reward.energy"])


def test_cross_field_checks_run_at_load() -> None:
    with pytest.raises(ConfigError, match="must be a multiple of interval_s"):
        from_dict(EnvConfig, {"interval_s": 7})
    with pytest.raises(ConfigError, match="trace_path is not set"):
        from_dict(EnvConfig, {"workload": {"source": "trace"}})
    with pytest.raises(ConfigError, match="needs predictor_path"):
        from_dict(EnvConfig, {"predictor": "lstm"})
    with pytest.raises(ConfigError, match="reward_preset 'ipaa' is unknown.*did you mean 'ipa'"):
        from_dict(EnvConfig, {"reward_preset": "ipaa"})


def test_reward_preset_sets_weights() -> None:
    config = from_dict(EnvConfig, {"reward_preset": "ipa"})
    assert config.reward == REWARD_PRESETS["ipa"]
    assert config.reward.energy == 0.0


def test_malformed_yaml_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("reward: {energy: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: malformed YAML"):
        load_config(EnvConfig, bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(EnvConfig, tmp_path / "missing.yaml")
