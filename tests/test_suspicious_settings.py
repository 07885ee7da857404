"""Legal but suspicious settings warn once, naming the setting and the fix (SB3-style)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from envs.config.errors import SuspiciousSettingWarning
from envs.env_config import EnvConfig, RewardWeights
from envs.pipeline_env import PipelineEnv
from envs.suspicious import sla_check_batch

# The tiny profile (tests/conftest.py) offers batches 1, 2, 4: the check uses batch 4. At
# batch 4 and 1 core, mean = base x (0.4 + 0.6 x 4) / (0.6 + 0.4) = 2.8 x base and
# p99 = 1.2 x mean: stage "first"'s fastest (base 20 ms) 67.2 ms, stage "second"'s
# fastest (base 10 ms) 33.6 ms, so the fastest variants need 100.8 ms end to end.
FASTEST_P99_SUM_MS = 67.2 + 33.6


def build(path: Path, **fields: object) -> list[warnings.WarningMessage]:
    """The suspicious-setting warnings of building (and closing) an env."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PipelineEnv(EnvConfig(pipeline=str(path), **fields)).close()  # type: ignore[arg-type]
    return [w for w in caught if issubclass(w.category, SuspiciousSettingWarning)]


def test_defaults_do_not_warn(tiny_profile_path: Path) -> None:
    assert build(tiny_profile_path) == []


def test_sla_below_the_fastest_variants_at_batch_8_warns(tiny_profile_path: Path) -> None:
    caught = build(tiny_profile_path, sla_ms=100.0)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "sla_ms=100" in text and "100.8 ms" in text and "batch 4" in text
    assert "raise sla_ms" in text
    assert caught[0].filename == __file__  # points at the caller that built the env


def test_sla_just_above_the_fastest_variants_does_not_warn(tiny_profile_path: Path) -> None:
    assert build(tiny_profile_path, sla_ms=FASTEST_P99_SUM_MS + 0.1) == []


def test_a_zero_weight_warns_once_per_switched_off_term(tiny_profile_path: Path) -> None:
    caught = build(tiny_profile_path, reward=RewardWeights(energy=0.0, sla_violation=0.0))
    texts = sorted(str(w.message) for w in caught)
    assert len(texts) == 2
    assert texts[0].startswith("reward.energy is 0") and "reward.energy > 0" in texts[0]
    assert texts[1].startswith("reward.sla_violation is 0")


def test_terms_off_by_default_and_presets_do_not_warn(tiny_profile_path: Path) -> None:
    assert build(tiny_profile_path, reward=RewardWeights(cost=0.0, batch=0.0)) == []
    assert build(tiny_profile_path, reward_preset="ipa") == []  # energy 0 by design


def test_warning_class_is_filterable(tiny_profile_path: Path) -> None:
    with pytest.warns(SuspiciousSettingWarning, match="reward.accuracy is 0"):
        PipelineEnv(EnvConfig(pipeline=str(tiny_profile_path),
                              reward=RewardWeights(accuracy=0.0))).close()
    assert issubclass(SuspiciousSettingWarning, UserWarning)


@pytest.mark.parametrize(("sizes", "batch"), [((1, 2, 4, 8, 16), 8), ((1, 2, 4), 4),
                                              ((2, 16), 2), ((16, 32), 16)])
def test_check_batch_is_8_else_the_largest_below_else_the_smallest(
        sizes: tuple[int, ...], batch: int) -> None:
    assert sla_check_batch(sizes) == batch
