"""The profiler end to end on the tiny catalog pipeline, its resumability, and the GPU check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import energy.profiler as profiler
from energy.gpu_check import write_gpu_profile
from energy.gpu_measure import SideBySide
from energy.meters import TdpEstimator
from energy.profiler import profile_pipeline
from envs.config.errors import ConfigError
from envs.model.profiles import load_pipeline
from models.catalog import tiny_pipeline

REPO = Path(__file__).resolve().parents[1]
FAST = {"idle_s": 0.05, "budget_s": 0.01, "min_reps": 2, "max_reps": 3, "warmup": 1,
        "progress": False}
DESCRIPTION = "tdp estimate for tests (4 W/core busy, 1 W/core idle)"


def _meter() -> TdpEstimator:
    return TdpEstimator(tdp_w=8.0, idle_w=2.0, cores=2)


def _profile(out: Path, **overrides: object) -> Path:
    kwargs = {**FAST, **overrides}
    description = kwargs.pop("description", DESCRIPTION)
    threads = kwargs.pop("threads", (1,))
    return profile_pipeline(tiny_pipeline(), out, _meter(), str(description), threads, **kwargs)


def _partial(out: Path) -> Path:
    return out.with_suffix(".partial.jsonl")


def test_tiny_profile_loads_with_measured_latency_and_estimated_energy(tmp_path: Path) -> None:
    out = _profile(tmp_path / "tiny.yaml", threads=(1, 2))
    pipeline = load_pipeline(out)
    spec = tiny_pipeline()
    assert pipeline.name == "tiny" and pipeline.sla_ms == spec.sla_ms
    assert all(s.batch_sizes == spec.batch_sizes for s in pipeline.stages)
    [stage] = pipeline.stages
    assert {v.name for v in stage.variants} == {"tiny4", "tiny16"}
    for variant in stage.variants:
        rows = variant.profile.rows
        assert {(r.batch, r.cores) for r in rows} == {(1, 1), (2, 1), (1, 2), (2, 2)}
        for row in rows:
            assert 0 < row.latency_mean_ms <= row.latency_p99_ms
            assert row.energy_per_batch_j >= 0
            assert pipeline.sources[row.latency_source].kind == "measured"
            assert pipeline.sources[row.energy_source].kind == "estimated"
        assert variant.accuracy_source.startswith("synthetic test model")
    doc = yaml.safe_load(out.read_text())
    assert DESCRIPTION in doc["sources"]["energy"]["description"]
    assert doc["notes"] == spec.notes


def test_cli_writes_a_loadable_profile(tmp_path: Path) -> None:
    out = tmp_path / "cli" / "tiny.yaml"
    cmd = [sys.executable, "-m", "energy.profiler", "--pipeline", "tiny", "--out", str(out),
           "--meter", "tdp", "--threads", "1", "--budget-s", "0.01", "--min-reps", "2",
           "--max-reps", "3", "--idle-s", "0.05"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    assert load_pipeline(out).stages[0].variants[0].profile.rows


@pytest.fixture
def count_measurements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of every point `profile_pipeline` measures from now on."""
    measured: list[int] = []
    real = profiler.measure_point

    def counting(*args: object, **kwargs: object) -> tuple[float, float, float, int]:
        measured.append(int(args[2]))  # type: ignore[call-overload]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(profiler, "measure_point", counting)
    return measured


def test_resume_measures_only_the_missing_points(
    tmp_path: Path, count_measurements: list[int]
) -> None:
    out = tmp_path / "tiny.yaml"
    _profile(out)
    lines = _partial(out).read_text().splitlines()
    assert len(lines) == 1 + 4  # meta + 2 variants x 1 thread count x 2 batch sizes
    kept = lines[:3]
    _partial(out).write_text("\n".join(kept) + "\n")  # as if killed after two points
    count_measurements.clear()

    _profile(out)
    assert count_measurements == [1, 2]  # tiny16 at batch 1 and 2, nothing else
    after = _partial(out).read_text().splitlines()
    assert after[:3] == kept  # the points already measured are not touched
    points = [json.loads(line) for line in after[1:]]
    keys = {(p["variant"], p["threads"], p["batch"]) for p in points}
    assert keys == {("tiny4", 1, 1), ("tiny4", 1, 2), ("tiny16", 1, 1), ("tiny16", 1, 2)}
    assert len(load_pipeline(out).stages[0].variants) == 2

    count_measurements.clear()
    _profile(out)  # everything is there: nothing is measured again
    assert count_measurements == []


def test_resume_after_a_line_cut_short(tmp_path: Path, count_measurements: list[int]) -> None:
    """A kill in the middle of writing a point: that point and the later ones are redone."""
    out = tmp_path / "tiny.yaml"
    _profile(out)
    lines = _partial(out).read_text().splitlines()
    _partial(out).write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])
    count_measurements.clear()

    _profile(out)
    assert count_measurements == [1, 2]
    [stage] = load_pipeline(out).stages
    assert all(len(v.profile.rows) == 2 for v in stage.variants)


def test_resume_after_sigkill_in_a_subprocess(tmp_path: Path) -> None:
    """A profiler process killed mid-run leaves a partial file that a rerun completes."""
    out = tmp_path / "tiny.yaml"
    script = (
        "import os, signal, sys\n"
        "import energy.profiler as p\n"
        "from models.catalog import tiny_pipeline\n"
        "from energy.meters import TdpEstimator\n"
        "real = p.measure_point\n"
        "calls = []\n"
        "def once(*a, **k):\n"
        "    if calls:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    calls.append(1)\n"
        "    return real(*a, **k)\n"
        "p.measure_point = once\n"
        f"p.profile_pipeline(tiny_pipeline(), __import__('pathlib').Path({str(out)!r}),\n"
        "    TdpEstimator(tdp_w=8.0, idle_w=2.0, cores=2), "
        f"{DESCRIPTION!r}, (1,), idle_s=0.05,\n"
        "    budget_s=0.01, min_reps=2, max_reps=3, warmup=1, progress=False)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert result.returncode == -9
    assert not out.exists()
    lines = _partial(out).read_text().splitlines()
    assert len(lines) == 2  # meta + the one point finished before the kill
    _profile(out)
    assert _partial(out).read_text().splitlines()[:2] == lines
    assert len(_partial(out).read_text().splitlines()) == 5
    load_pipeline(out)


@pytest.mark.parametrize(
    "change",
    [{"threads": (1, 2)}, {"batch_sizes": (1,)}, {"description": "another meter"}],
    ids=["threads", "batch_sizes", "meter"],
)
def test_resume_with_other_settings_raises(tmp_path: Path, change: dict[str, object]) -> None:
    out = tmp_path / "tiny.yaml"
    _profile(out)
    with pytest.raises(ConfigError, match="different settings"):
        _profile(out, **change)


def _has_gpu() -> bool:
    return torch.cuda.is_available()


@pytest.mark.skipif(_has_gpu(), reason="a GPU is present: the check would really run")
def test_gpu_check_fails_fast_without_a_gpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.yaml"
    cmd = [sys.executable, "-m", "energy.gpu_check", "--out", str(out)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("python -m energy.gpu_check: error: ")  # one line
    assert "NVIDIA GPU" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_gpu_profile_writer_output_loads(tmp_path: Path) -> None:
    """The GPU check's profile writer, fed made-up NVML rows, writes a loadable profile."""
    rows = [
        SideBySide(b, 20, 2.0 + 0.3 * b, 2.5 + 0.3 * b, 0.5 * b, 0.51 * b, 0.3 * b, 2.0)
        for b in (1, 8, 32)
    ]
    out = tmp_path / "gpu.yaml"
    write_gpu_profile(out, rows, idle_w=70.0, gpu_name="Test GPU", sla_ms=500.0)
    pipeline = load_pipeline(out)
    assert pipeline.stages[0].batch_sizes == (1, 8, 32)
    (pool,) = pipeline.fleet.pools
    assert "Test GPU" in pool.device_name
    assert pool.device_idle_w == 70.0 and pool.allocated_w == 0.0
    assert pool.device == "gpu"
    [variant] = pipeline.stages[0].variants
    assert variant.name == "resnet50"
    measured = [r for r in variant.profile.rows if r.latency_source != "interpolated"]
    assert [r.batch for r in measured] == [1, 8, 32]
    assert all(pipeline.sources[r.energy_source].kind == "measured" for r in measured)
    assert pool.device == "gpu" and pool.devices_per_node == 1
    latency = pipeline.sources["latency"].description
    assert "torch.cuda.synchronize()" in latency and "set_num_threads" not in latency
    assert pipeline.sources["idle"].description.startswith("GPU idle power from NVML")
    assert "SLA = 3 x the sum of the measured p99" in yaml.safe_load(out.read_text())["notes"]


def test_profiler_unwritable_out_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"/proc/nope/tiny\.yaml.*writable --out"):
        _profile(Path("/proc/nope/tiny.yaml"))


def test_time_batches_syncs_after_warmup_and_every_batch_with_meters_nested() -> None:
    """The shared timing loop the profiler and the GPU check use: ``sync`` is called
    before and after the warm-up and after each timed batch; every meter spans the same
    window (the first opens first and closes last)."""
    from energy.measure import time_batches

    calls: list[str] = []
    outer, inner = _meter(), _meter()
    model = torch.nn.Linear(4, 4).eval()
    latencies, (a, b) = time_batches(model, torch.zeros(2, 4), (outer, inner), 0.0,
                                     min_reps=3, max_reps=None, warmup=2,
                                     sync=lambda: calls.append("sync"))
    assert latencies.size == 3 and (latencies > 0).all()
    assert len(calls) == 2 + 3
    assert a.seconds >= b.seconds >= latencies.sum()
