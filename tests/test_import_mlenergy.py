"""The ML.ENERGY importer on real ML.ENERGY v3 files (skipped where the data is absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from energy.import_mlenergy import main
from energy.mlenergy import read_model_file, select_points
from envs.config.errors import ProfileError
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("IPA_SHARED_DATA", SHARED_DATA)) / "mlenergy" / "v3" / "models"
LLAMA = DATA / "meta-llama__Llama-3.1-8B-Instruct__lm-arena-chat.json"
SANA = DATA / "Efficient-Large-Model__SANA1.5_4.8B_1024px_diffusers__text-to-image.json"
T2I = {name: DATA / f"{name}__text-to-image.json" for name in (
    "Efficient-Large-Model__SANA1.5_4.8B_1024px_diffusers",
    "stabilityai__stable-diffusion-3.5-medium", "stabilityai__stable-diffusion-3.5-large",
    "black-forest-labs__FLUX.1-dev")}
needs_data = pytest.mark.skipif(not LLAMA.is_file(), reason=f"ML.ENERGY data absent at {DATA}")
IDLE_W = 75.0


def _args(paths: list[str], out: Path, quality: Path, **drop: bool) -> list[str]:
    opts = {"--gpu": "H100", "--out": str(out), "--quality": str(quality),
            "--release": "ML.ENERGY v3 (test)", "--sla-ms": "60000", "--notes": "test",
            "--idle-w": str(IDLE_W), "--idle-kind": "assumed", "--idle-why": "test value",
            "--node-static-w": "1000", "--static-kind": "assumed", "--static-why": "test",
            "--devices-per-node": "8", "--fleet": "elastic", "--fleet-nodes": "4"}
    argv = [*paths, "--batches", "8", "16", "32", "64"]
    for k, v in opts.items():
        if not drop.get(k.lstrip("-").replace("-", "_")):
            argv += [k, v]
    return argv


@pytest.fixture
def quality(tmp_path: Path) -> Path:
    path = tmp_path / "quality.yaml"
    path.write_text(yaml.safe_dump({"meta-llama/Llama-3.1-8B-Instruct": {
        "accuracy": 48.3, "accuracy_metric": "MMLU-Pro (%)", "accuracy_source": "model card"}}))
    return path


@needs_data
def test_llama_8b_cap_64_below_half_of_cap_8_per_request() -> None:
    points = {p.batch: p for p in select_points(read_model_file(LLAMA), "H100", 1, (8, 64))}
    # the measured fact: 176.8 J/request at cap 8, 46.9 J at cap 64 (README of the data)
    assert points[8].energy_per_request_j == pytest.approx(176.77, abs=0.01)
    assert points[64].energy_per_request_j < 0.5 * points[8].energy_per_request_j


@needs_data
def test_llm_row_mapping_matches_hand_computation() -> None:
    (p,) = select_points(read_model_file(LLAMA), "H100", 1, (8,))
    # cap 8 on 1 x H100: 1069.5689 tokens/s / 388.6777 tokens per request = 2.7518 req/s
    rps = 1069.5688508868182 / 388.677734375
    assert p.latency_mean_ms == pytest.approx(1000 * 8 / rps, rel=1e-9)
    assert p.latency_mean_ms == pytest.approx(2907.17, abs=0.01)
    assert p.latency_p99_ms > p.latency_mean_ms
    # measured mean power x batch latency = the batch's measured energy (486.4 W x 2.907 s)
    assert p.avg_power_w * p.latency_mean_ms / 1000 == pytest.approx(p.total_energy_j, rel=1e-3)


@needs_data
def test_written_rows_round_trip_to_measured_energy(tmp_path: Path, quality: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(_args([str(LLAMA)], out, quality)) == 0
    doc = yaml.safe_load(out.read_text())
    (pool,) = doc["pools"]
    assert pool["device"] == "gpu" and pool["device_idle_w"] == IDLE_W
    assert doc["sources"]["gpu_idle"]["kind"] == "assumed"
    measured = {c["max_num_seqs"]: c["energy_per_request_joules"]
                for c in json.loads(LLAMA.read_text())["configurations"]
                if c["gpu_model"] == "H100" and c["num_gpus"] == 1}
    (variant,) = doc["stages"][0]["variants"]
    assert [r[0] for r in variant["rows"]] == [8, 16, 32, 64]
    for batch, cores, mean_ms, p99_ms, dyn_j, lat_src, en_src in variant["rows"]:
        total = measured[batch] * batch
        assert dyn_j >= 0 and mean_ms <= p99_ms and cores == 1
        assert dyn_j + IDLE_W * cores * mean_ms / 1000 == pytest.approx(total, rel=1e-6)
        assert doc["sources"][en_src]["kind"] == "measured" and lat_src == en_src
        assert LLAMA.name in doc["sources"][en_src]["description"]


@needs_data
def test_diffusion_rows(tmp_path: Path) -> None:
    points = select_points(read_model_file(SANA), "H100", 1, (1, 16))
    # SANA1.5 4.8B on 1 x H100, batch 1: 1181.1 J/image in 2.119 s
    assert points[0].total_energy_j == pytest.approx(1181.1, abs=0.1)
    assert points[0].latency_mean_ms == pytest.approx(2119.0, abs=0.1)
    assert points[1].total_energy_j == pytest.approx(16 * points[1].energy_per_request_j)


def _run_cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "energy.import_mlenergy", *argv], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("python -m energy.import_mlenergy: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_without_idle_power_exits_2(tmp_path: Path, quality: Path) -> None:
    proc = _run_cli(_args(["x.json"], tmp_path / "p.yaml", quality, idle_w=True))
    _one_line_error(proc, "--idle-w", "idle")


def test_missing_key_names_key_and_file(tmp_path: Path, quality: Path) -> None:
    bad = tmp_path / "bad__model__lm-arena-chat.json"
    bad.write_text(json.dumps({"model_id": "meta-llama/Llama-3.1-8B-Instruct",
                               "task": "lm-arena-chat", "configurations": [{
                                   "gpu_model": "H100", "num_gpus": 1, "max_num_seqs": 8}]}))
    with pytest.raises(ProfileError, match=r"bad__model__lm-arena-chat\.json.*avg_output_len"):
        read_model_file(bad)
    proc = _run_cli(_args([str(bad)], tmp_path / "p.yaml", quality))
    _one_line_error(proc, str(bad), "'avg_output_len'")


@needs_data
def test_unknown_gpu_names_gpu_and_file(tmp_path: Path, quality: Path) -> None:
    argv = _args([str(LLAMA)], tmp_path / "p.yaml", quality)
    argv[argv.index("--gpu") + 1] = "V100"
    proc = _run_cli(argv)
    _one_line_error(proc, str(LLAMA), "'V100'", "gpu_model", "H100")


@needs_data
def test_idle_power_above_measured_power_names_the_row(tmp_path: Path, quality: Path) -> None:
    argv = _args([str(LLAMA)], tmp_path / "p.yaml", quality)
    argv[argv.index("--idle-w") + 1] = "600"  # > 486 W measured at cap 8
    assert main(argv) == 2
    assert not (tmp_path / "p.yaml").exists()


@needs_data
def test_missing_quality_entry_is_an_error(tmp_path: Path, quality: Path) -> None:
    proc = _run_cli(_args([str(LLAMA), str(SANA)], tmp_path / "p.yaml", quality))
    _one_line_error(proc, "SANA1.5_4.8B", str(quality))


@needs_data
def test_t2i_batching_1_to_16_moves_energy_per_image_under_10_percent() -> None:
    # the measured fact on one H100 at 1024 px: J/image at batch 16 over batch 1 is
    # 0.984 (SANA1.5 4.8B), 1.012 (SD-3.5 medium), 0.931 (SD-3.5 large), 0.950 (FLUX.1-dev)
    ratios = {}
    for name, path in T2I.items():
        one, sixteen = select_points(read_model_file(path), "H100", 1, (1, 16))
        ratios[name] = sixteen.energy_per_request_j / one.energy_per_request_j
        # the GPU is already busy at batch 1: measured mean power >= 449 W (64 % of 700 W TDP)
        assert one.avg_power_w > 440
    assert all(0.9 < r < 1.02 for r in ratios.values()), ratios
    large = select_points(read_model_file(T2I["stabilityai__stable-diffusion-3.5-large"]),
                          "H100", 1, (1, 16))
    assert large[0].energy_per_request_j == pytest.approx(4420.1, abs=0.1)
    assert large[1].energy_per_request_j == pytest.approx(4116.3, abs=0.1)
    assert min(ratios, key=ratios.get) == "stabilityai__stable-diffusion-3.5-large"


@pytest.mark.parametrize("name", ["llm_chat_h100", "t2i_h100", "chat_to_image_h100"])
def test_shipped_gpu_profiles_are_consistent(name: str) -> None:
    doc = yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())
    (pool,) = doc["pools"]
    assert pool["device"] == "gpu" and pool["sources"]["device_idle_w"] in doc["sources"]
    assert doc["sources"][pool["sources"]["device_idle_w"]]["kind"] in ("cited", "assumed")
    for stage in doc["stages"]:
        for v in stage["variants"]:
            assert v["accuracy_source"] and v["accuracy_metric"]
            batches = {r[0] for r in v["rows"]}
            assert set(stage["batch_sizes"]) <= batches
            assert 1 < v["accuracy"] <= 100  # percent, as IPA's product mode expects
            for row in v["rows"]:
                assert row[4] >= 0 and 0 < row[2] <= row[3]
                assert doc["sources"][row[5]]["kind"] == "measured"
        # one metric per stage, because IPA ranks a stage's variants by it
        assert len({v["accuracy_metric"].split(" (")[0] for v in stage["variants"]}) == 1
    # the SLA the notes justify: the slowest path at the smallest batch fits, and the SLA is
    # that path rounded up to the next 10 s
    assert doc["format_version"] == 3
    knobs = {s["name"]: s.get("knob", "batch") for s in doc["stages"]}
    assert knobs == {s: "cap" if s == "chat" else "batch" for s in knobs}
    slowest = sum(max(r[3] for v in s["variants"] for r in v["rows"]
                      if r[0] == min(s["batch_sizes"]))
                  for s in doc["stages"])
    assert slowest <= doc["sla_ms"] < slowest + 10_000


def test_shipped_t2i_profile_loads_with_cited_geneval_and_idle_split() -> None:
    from envs.model import perf, power
    from envs.model.profiles import load_pipeline

    pipeline = load_pipeline(ROOT / "profiles" / "t2i_h100.yaml")
    (stage,) = pipeline.stages
    assert len(stage.variants) >= 4
    by_name = {v.name: v for v in stage.variants}
    # GenEval overall in %, Flow-GRPO (arXiv:2505.05470v5) Table 1
    assert {n: v.accuracy for n, v in by_name.items()} == {
        "stable-diffusion-3.5-medium": 63.0, "FLUX.1-dev": 66.0,
        "stable-diffusion-3.5-large": 71.0, "SANA1.5_4.8B_1024px_diffusers": 81.0}
    assert all("2505.05470v5" in v.accuracy_source for v in stage.variants)
    sana = by_name["SANA1.5_4.8B_1024px_diffusers"]
    # by hand: measured 1181.1 J at batch 1 in 2.119 s, minus 75 W idle x 2.119 s = 1022.2 J
    assert power.energy_per_request_j(sana, 1, 1) == pytest.approx(1181.1 - 75 * 2.119, abs=0.2)
    # the dominance the profile's notes state: the best GenEval also has the lowest dynamic
    # J/image and latency at every batch size
    for b in stage.batch_sizes:
        others = [v for v in stage.variants if v is not sana]
        assert all(power.energy_per_request_j(sana, b, 1) < power.energy_per_request_j(v, b, 1)
                   for v in others)
        assert all(perf.batch_latency_p99_ms(sana, b, 1) < perf.batch_latency_p99_ms(v, b, 1)
                   for v in others)


def test_shipped_gpu_profiles_load_with_the_new_loader() -> None:
    from envs.model import power
    from envs.model.profiles import load_pipeline

    pipeline = load_pipeline(ROOT / "profiles" / "llm_chat_h100.yaml")
    assert [v.name for v in pipeline.stages[0].variants][0] == "Llama-3.1-8B-Instruct"
    assert pipeline.fleet.pools[0].device == "gpu"
    llama = pipeline.stages[0].variants[0]
    # the measured fact survives the idle split: per-request energy falls with the cap
    assert power.energy_per_request_j(llama, 64, 1) < 0.5 * power.energy_per_request_j(llama, 8, 1)


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--idle-w", "nan", "argument --idle-w: 'nan' must be a finite number"),
    ("--sla-ms", "nan", "argument --sla-ms: 'nan' must be a finite number"),
    ("--devices-per-node", "0", "argument --devices-per-node: '0' must be an integer >= 1"),
])
def test_nonsensical_numbers_are_usage_errors(tmp_path: Path, quality: Path, flag: str,
                                              value: str, needle: str) -> None:
    out = tmp_path / "p.yaml"
    argv = _args(["x.json"], out, quality)
    argv[argv.index(flag) + 1] = value
    proc = _run_cli(argv)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stderr.strip().splitlines()[-1]
    assert not out.exists()


def test_stage_without_files_is_an_error(tmp_path: Path, quality: Path) -> None:
    out = tmp_path / "p.yaml"
    proc = _run_cli(["--stage", "chat=,", *_args([], out, quality)])
    _one_line_error(proc, "--stage 'chat=,'", "no files")
    assert not out.exists()


@needs_data
def test_unwritable_out_is_one_line(quality: Path) -> None:
    proc = _run_cli(_args([str(LLAMA)], Path("/proc/nope/p.yaml"), quality))
    _one_line_error(proc, "/proc/nope/p.yaml", "writable")


@needs_data
def test_a_profile_that_would_not_load_is_not_written(tmp_path: Path, quality: Path) -> None:
    out = tmp_path / "p.yaml"
    argv = _args([str(LLAMA)], out, quality)
    argv[argv.index("--sla-ms") + 1] = "1000"  # below the fastest path, 19.3 s
    proc = _run_cli(argv)
    _one_line_error(proc, str(out))
    assert not out.exists()
