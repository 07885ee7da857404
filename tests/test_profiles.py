"""Profile files: validation, densification, provenance, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envs.config.errors import ConfigError, ProfileError
from envs.model import perf
from envs.model.profiles import available_pipelines, load_pipeline
from tests.conftest import tiny_profile_doc


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_loads_and_orders_variants_by_accuracy(tiny_pipeline) -> None:
    first = tiny_pipeline.stages[0]
    assert [v.name for v in first.variants] == ["small", "medium", "large"]
    assert first.accuracy_ranks == pytest.approx((0.0, 0.5, 1.0))
    assert tiny_pipeline.energy_estimated


def test_interpolated_rows_are_marked(tiny_pipeline) -> None:
    profile = tiny_pipeline.stages[0].variants[0].profile
    row3 = profile.row(3, 1)
    assert profile.sources[row3.latency_source].kind == "interpolated"
    lo, hi = profile.row(2, 1), profile.row(4, 1)
    assert row3.latency_mean_ms == pytest.approx((lo.latency_mean_ms + hi.latency_mean_ms) / 2)
    assert profile.measured_batches(1) == (1, 2, 4)


def test_missing_batch_size_the_config_allows(tiny_profile_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"batch sizes \[8\] at 1 cores are allowed"):
        load_pipeline(tiny_profile_path, batch_sizes=(1, 8))


def test_sla_below_fastest_latency(tiny_profile_path: Path, tiny_pipeline) -> None:
    fastest = sum(min(perf.batch_latency_p99_ms(v, 1, v.base_cores) for v in s.variants)
                  for s in tiny_pipeline.stages)
    with pytest.raises(ConfigError, match="below the fastest possible"):
        load_pipeline(tiny_profile_path, sla_ms=fastest * 0.9)
    assert load_pipeline(tiny_profile_path, sla_ms=fastest).sla_ms == fastest


def test_unknown_pipeline_suggests(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="unknown pipeline 'vidoe'"):
        load_pipeline("vidoe")


def test_unknown_variant_suggests(tiny_pipeline) -> None:
    with pytest.raises(ProfileError, match="did you mean 'medium'"):
        tiny_pipeline.stages[0].variant_index("mediun")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["stages"][0]["variants"][0]["rows"][0].__setitem__(5, "nowhere"),
         "row source 'nowhere' is not in sources"),
        (lambda d: d["stages"][0]["variants"][0]["rows"][0].__setitem__(3, 1e-6),
         "latency_mean_ms <= latency_p99_ms"),
        (lambda d: d["stages"][0]["variants"][0].pop("accuracy"), "missing key"),
        (lambda d: d["stages"][0]["variants"][0].__setitem__("accuracy", "high"),
         "expected a number"),
        (lambda d: d.__setitem__("row_columns", ["batch"]), "row_columns must be"),
        (lambda d: d["stages"][1]["variants"].append(d["stages"][1]["variants"][0]),
         "duplicate variant names"),
    ],
)
def test_malformed_profiles_are_rejected(tmp_path: Path, mutate, message: str) -> None:
    doc = tiny_profile_doc()
    mutate(doc)
    with pytest.raises(ProfileError, match=message):
        load_pipeline(write(tmp_path, doc))


def test_shipped_profiles_load() -> None:
    names = available_pipelines()
    assert "video" in names
    for name in names:
        pipeline = load_pipeline(name)
        for stage in pipeline.stages:
            assert len(stage.variants) >= 2
            for v in stage.variants:
                assert v.accuracy_source
                if v.continuous is not None:  # the simulators read its measured points
                    assert pipeline.sources[v.continuous.points_source].kind == "measured"
                    continue
                for b in stage.batch_sizes:
                    row = v.profile.row(b, v.base_cores)
                    assert v.profile.sources[row.latency_source].kind in ("measured", "cited")
