"""Per-stage knob values (profile format version 2): each stage offers its own batch sizes
or concurrency caps; old files are refused with the migration command, and the migration
is exact."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.config.errors import ProfileError
from envs.env_config import EnvConfig
from envs.model.profile_migrate import main as migrate_main
from envs.model.profiles import load_pipeline
from envs.pipeline_env import PipelineEnv
from ipa_baseline import solve_ipa
from tests.conftest import tiny_profile_doc
from tests.test_cli_errors import REPO, run

OLD_HARDWARE = {"name": "test CPU", "device": "cpu_core", "devices_per_node": 4,
                "node_static_w": 0.0, "device_idle_w": 1.0, "static_source": "static",
                "idle_source": "idle", "fleet": "fixed", "fleet_nodes": 1}
"""The tiny profile's one-pool fleet as versions 1 and 2 wrote it (idle per allocated core)."""


def version_1(doc: dict) -> dict:
    """The version-1 form of a document whose stages share one list."""
    old = {"batch_sizes": doc["stages"][0]["batch_sizes"]}
    old.update((k, OLD_HARDWARE if k == "pools" else v) for k, v in doc.items()
               if k not in ("format_version", "stages"))
    old = {("hardware" if k == "pools" else k): v for k, v in old.items()}
    old["stages"] = [{k: v for k, v in s.items() if k != "batch_sizes"} for s in doc["stages"]]
    return old


def write(tmp_path: Path, doc: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def per_stage_doc() -> dict:
    doc = tiny_profile_doc()
    doc["stages"][1]["batch_sizes"] = [2, 4]
    doc["stages"][1]["knob"] = "cap"
    return doc


def test_each_stage_offers_its_own_values(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, per_stage_doc()))
    assert [s.batch_sizes for s in pipeline.stages] == [(1, 2, 4), (2, 4)]
    assert [s.knob for s in pipeline.stages] == ["batch", "cap"]
    env = PipelineEnv(EnvConfig(pipeline=str(tmp_path / "p.yaml"), max_replicas=5))
    # [variant, knob index, replicas] per stage: 3 batch sizes, then 2 caps
    assert env.action_space.nvec.tolist() == [3, 3, 5, 2, 2, 5]
    decision = env.decode(np.array([0, 2, 0, 1, 0, 1]))
    assert [c.batch for c in decision.stages] == [4, 2]
    assert env.encode(decision).tolist() == [0, 2, 0, 1, 0, 1]
    # the initial decision takes each stage's smallest value
    _, info = env.reset(seed=0)
    assert [c.batch for c in info["decision"].stages] == [1, 2]
    # the ILP only chooses among each stage's values
    for rate in (10.0, 40.0, 120.0):
        result = solve_ipa(pipeline, rate, max_replicas=5, interval_s=10.0)
        assert result.decision.stages[1].batch in (2, 4)
    # an override applies to every stage
    both = load_pipeline(tmp_path / "p.yaml", batch_sizes=(2,))
    assert [s.batch_sizes for s in both.stages] == [(2,), (2,)]


@pytest.mark.parametrize(("values", "words"), [
    ([4, 2], "batch_sizes [4, 2] must be integers >= 1 in increasing order"),
    ([2, 2], "in increasing order without repeats"),
    ([0, 2], "must be integers >= 1"),
    ([1.5], "must be integers >= 1"),
    ([], "stage 'second' has no knob values"),
    (None, "stage 'second' has no knob values"),
])
def test_bad_knob_values_name_the_stage_and_the_fix(tmp_path: Path, values, words: str) -> None:
    doc = tiny_profile_doc()
    if values is None:
        del doc["stages"][1]["batch_sizes"]
    else:
        doc["stages"][1]["batch_sizes"] = values
    path = write(tmp_path, doc)
    with pytest.raises(ProfileError) as info:
        load_pipeline(path)
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value)


def test_unmeasured_stage_value_is_refused(tmp_path: Path) -> None:
    doc = tiny_profile_doc()
    doc["stages"][1]["batch_sizes"] = [1, 8]
    with pytest.raises(ProfileError, match=r"second/fast: batch sizes \[8\] at 1 cores are "
                                           r"allowed by the configuration but not profiled"):
        load_pipeline(write(tmp_path, doc))


def test_a_version_1_file_names_the_migration_command(tmp_path: Path) -> None:
    path = write(tmp_path, version_1(tiny_profile_doc()))
    with pytest.raises(ProfileError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message == (f"{path}: profile format version 1, this package reads version 3 "
                       f"(device pools, batch sizes per stage); convert it with "
                       f"'python -m envs.model.profile_migrate {path}'")
    # and a command given it stops with that one line and exit code 2
    out = run(["evaluate.py", f"env.pipeline={path}"], REPO)
    assert out.returncode == 2 and "profile_migrate" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_migration_is_exact_and_idempotent(tmp_path: Path, capsys) -> None:
    new = tiny_profile_doc()
    path = write(tmp_path, version_1(new), "old.yaml")
    assert migrate_main([str(path), "--cap-stage", "second"]) == 0
    assert capsys.readouterr().out == f"{path}: converted to format version 3\n"
    converted = yaml.safe_load(path.read_text())
    want = copy.deepcopy(new)
    want["stages"][1]["knob"] = "cap"
    # the old idle power per allocated core becomes allocated_w; the fixed fleet's node
    # stays always on, in a pool of 8; the zero static power keeps its old source
    want["pools"][0]["sources"] = {"node_static_w": "static", "allocated_w": "idle"}
    assert converted == want
    assert list(converted)[0] == "format_version"
    assert list(converted["stages"][1]) == ["name", "knob", "batch_sizes", "variants"]
    reference = load_pipeline(write(tmp_path, new, "new.yaml"))
    migrated = load_pipeline(path)
    assert [s.variants for s in migrated.stages] == [s.variants for s in reference.stages]
    assert [s.batch_sizes for s in migrated.stages] == [(1, 2, 4), (1, 2, 4)]
    before = path.read_text()
    assert migrate_main([str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: already format version 3\n"
    assert path.read_text() == before


@pytest.mark.parametrize(("args", "words"), [
    (["missing.yaml"], "missing.yaml does not exist"),
    (["old.yaml", "--cap-stage", "chat"], "--cap-stage ['chat'] is not a stage"),
    (["junk.yaml"], "not a version-1 profile"),
])
def test_migration_errors_exit_2_with_one_line(tmp_path: Path, args: list, words: str) -> None:
    write(tmp_path, version_1(tiny_profile_doc()), "old.yaml")
    (tmp_path / "junk.yaml").write_text("pipeline: x\nstages: 3\n")
    out = run(["-m", "envs.model.profile_migrate", *args], tmp_path)
    assert out.returncode == 2, out.stderr
    assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
