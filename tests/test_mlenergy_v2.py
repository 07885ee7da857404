"""ML.ENERGY v2 chat files as continuous-batching points: against numbers computed by hand
from the JSON files (in ../shared, skipped where absent), and every error path on
malformed files written to a temporary folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from energy.mlenergy.v2_points import (
    V2_GPU_DIRS,
    v2_cap_point,
    v2_points,
    v2_run_files,
    v2_weights_gb,
)
from envs.config.errors import ProfileError
from envs.model.llm_curve import LlmCurve

V2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlenergy" / "v2" / "data"
CHAT = V2 / "llm_text_generation" / "chat"
LLAMA_8B = "meta-llama/Meta-Llama-3.1-8B-Instruct"
GEMMA_27B = "google/gemma-2-27b-it"
GEMMA_9B = "google/gemma-2-9b-it"


@pytest.fixture
def v2() -> Path:
    """The v2 data folder, or skip."""
    if not CHAT.is_dir():
        pytest.skip(f"ML.ENERGY v2 data absent at {V2}")
    return V2


def raw(gpu: str, model_id: str, name: str) -> dict:
    """The raw JSON of one real file."""
    return json.loads((CHAT / V2_GPU_DIRS[gpu] / model_id / name).read_text())


# -- the real files ---------------------------------------------------------------------------

def test_llama_8b_h100_bs64_by_hand(v2: Path) -> None:
    d = raw("H100", LLAMA_8B, "bs64+tp1+pp1.json")
    p = next(p for p in v2_points(v2, "H100", LLAMA_8B, 1) if p.cap == 64)
    power = d["Energy/req (J)"] * d["Token tput (tok/s)"] / d["Avg Output Tokens"]
    assert power == pytest.approx(82.5858 * 1784.72 / 482.798, rel=1e-4)
    assert p.power_w == pytest.approx(power, rel=1e-12)
    assert p.power_w == pytest.approx(305.3, abs=0.1)
    assert p.tokens_per_s == d["Token tput (tok/s)"]
    assert p.concurrency == d["Avg BS (reqs)"]
    assert p.itl_median_ms == p.itl_p99_ms == pytest.approx(d["Avg TPOT (s)"] * 1000)
    assert p.itl_median_ms == pytest.approx(35.05, abs=0.01)


@pytest.mark.parametrize("gpu", sorted(V2_GPU_DIRS))
@pytest.mark.parametrize("model_id", [LLAMA_8B, GEMMA_27B, GEMMA_9B,
                                      "mistralai/Mistral-7B-Instruct-v0.3",
                                      "meta-llama/Meta-Llama-3.1-70B-Instruct"])
def test_one_point_per_file_sorted_by_cap(v2: Path, gpu: str, model_id: str) -> None:
    folder = CHAT / V2_GPU_DIRS[gpu] / model_id
    tps = {int(m.group(1)) for f in folder.glob("*.json")
           if (m := re.fullmatch(r"bs\d+\+tp(\d+)\+pp1\.json", f.name))}
    assert tps
    for tp in tps:
        names = sorted(folder.glob(f"bs*+tp{tp}+pp1.json"),
                       key=lambda f: int(f.name[2:].split("+")[0]))
        points = v2_points(v2, gpu, model_id, tp)
        assert v2_run_files(v2, gpu, model_id, tp) == names
        assert len(points) == len(names)
        caps = [p.cap for p in points]
        assert caps == sorted(caps) and len(set(caps)) == len(caps)
        for f, p in zip(names, points, strict=True):
            d = json.loads(f.read_text())
            assert p.cap == d["Max BS (reqs)"] == int(f.name[2:].split("+")[0])
            assert p.power_w == pytest.approx(
                d["Energy/req (J)"] * d["Token tput (tok/s)"] / d["Avg Output Tokens"])
        LlmCurve(tuple(points), idle_w=0.0)  # a valid curve: concurrency grows with the cap


def test_gemma_27b_a100_two_tps_and_odd_cap(v2: Path) -> None:
    assert [p.cap for p in v2_points(v2, "A100-40GB", GEMMA_27B, 2)] == [32, 63]
    assert [p.cap for p in v2_points(v2, "A100-40GB", GEMMA_27B, 4)] == [128, 192, 256, 320, 512]
    p63 = v2_points(v2, "A100-40GB", GEMMA_27B, 2)[1]
    d = raw("A100-40GB", GEMMA_27B, "bs63+tp2+pp1.json")
    assert p63.concurrency == d["Avg BS (reqs)"] <= 63
    assert p63.power_w == pytest.approx(
        d["Energy/req (J)"] * d["Token tput (tok/s)"] / d["Avg Output Tokens"])


def test_gemma_9b_a100_cap_127(v2: Path) -> None:
    assert [p.cap for p in v2_points(v2, "A100-40GB", GEMMA_9B, 1)] == [32, 64, 127]
    assert [p.cap for p in v2_points(v2, "A100-40GB", GEMMA_9B, 2)] == [32, 63, 127, 192, 256,
                                                                         320]


def test_weights_from_models_json(v2: Path) -> None:
    models = json.loads((CHAT / "models.json").read_text())
    assert v2_weights_gb(v2, LLAMA_8B) == 2 * models[LLAMA_8B]["params"] == 16.0
    assert v2_weights_gb(v2, GEMMA_27B) == 54.0
    with pytest.raises(ProfileError, match="did you mean 'google/gemma-2-27b-it'"):
        v2_weights_gb(v2, "google/gemma-2-27b")


def test_real_errors(v2: Path) -> None:
    with pytest.raises(ProfileError, match=r"unknown ML.ENERGY v2 GPU 'B200'.*'A100-40GB'"):
        v2_run_files(v2, "B200", LLAMA_8B, 1)
    with pytest.raises(ProfileError, match="did you mean 'meta-llama/Meta-Llama-3.1-8B-Instruct'"):
        v2_run_files(v2, "H100", "meta-llama/Llama-3.1-8B-Instruct", 1)
    with pytest.raises(ProfileError, match=r"no bs\*\+tp1\+pp1.json.*pp1 files: \[2, 4\]"):
        v2_run_files(v2, "A100-40GB", GEMMA_27B, 1)
    with pytest.raises(ProfileError, match=r"pp1 files: \[\] \(pp > 1 files, not read"):
        v2_run_files(v2, "A100-40GB", "mistralai/Mixtral-8x22B-Instruct-v0.1", 8)


# -- malformed files --------------------------------------------------------------------------

GOOD = {"Model": "org/m", "GPU": "NVIDIA H100 80GB HBM3", "TP": 1, "PP": 1,
        "Energy/req (J)": 100.0, "Avg TPOT (s)": 0.02, "Token tput (tok/s)": 1000.0,
        "Avg Output Tokens": 500.0, "Avg BS (reqs)": 30.0, "Max BS (reqs)": 32}


def write(root: Path, name: str, doc: dict | str, model: str = "org/m") -> Path:
    """One file under ``root`` in the v2 layout (H100)."""
    folder = root / "llm_text_generation" / "chat" / V2_GPU_DIRS["H100"] / model
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_synthetic_point(tmp_path: Path) -> None:
    p = v2_cap_point(write(tmp_path, "bs32+tp1+pp1.json", GOOD))
    assert (p.cap, p.concurrency, p.tokens_per_s) == (32, 30.0, 1000.0)
    assert p.power_w == pytest.approx(100.0 * 1000.0 / 500.0)  # 200 W
    assert p.itl_median_ms == p.itl_p99_ms == pytest.approx(20.0)


@pytest.mark.parametrize("field", ["Energy/req (J)", "Avg TPOT (s)", "Token tput (tok/s)",
                                   "Avg Output Tokens", "Avg BS (reqs)", "Max BS (reqs)"])
def test_missing_field(tmp_path: Path, field: str) -> None:
    doc = {k: v for k, v in GOOD.items() if k != field}
    path = write(tmp_path, "bs32+tp1+pp1.json", doc)
    with pytest.raises(ProfileError, match=re.escape(f"no field {field!r}")) as err:
        v2_cap_point(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("value", [0, -5.0, "12", None, float("nan")])
def test_bad_value(tmp_path: Path, value: object) -> None:
    path = write(tmp_path, "bs32+tp1+pp1.json", {**GOOD, "Token tput (tok/s)": value})
    with pytest.raises(ProfileError, match=re.escape("'Token tput (tok/s)'")):
        v2_cap_point(path)


def test_zero_and_negative_name_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "bs32+tp1+pp1.json", {**GOOD, "Energy/req (J)": 0})
    with pytest.raises(ProfileError, match=r"'Energy/req \(J\)' must be > 0, got 0"):
        v2_cap_point(path)
    write(tmp_path, "bs32+tp1+pp1.json", {**GOOD, "Avg TPOT (s)": -0.01})
    with pytest.raises(ProfileError, match=r"'Avg TPOT \(s\)' must be > 0, got -0.01"):
        v2_cap_point(path)


def test_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, "bs32+tp1+pp1.json", "{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        v2_cap_point(path)
    write(tmp_path, "bs32+tp1+pp1.json", "[1, 2]")
    with pytest.raises(ProfileError, match="expected a JSON object"):
        v2_cap_point(path)


def test_name_and_content_disagree(tmp_path: Path) -> None:
    path = write(tmp_path, "bs64+tp1+pp1.json", GOOD)
    with pytest.raises(ProfileError, match="'Max BS \\(reqs\\)' is 32 but the file name says bs64"):
        v2_cap_point(path)
    path = write(tmp_path, "bs32+tp2+pp1.json", GOOD)
    with pytest.raises(ProfileError, match="field 'TP' is 1 but the file name says tp2"):
        v2_cap_point(path)
    path = write(tmp_path, "bs32+tp1+pp2.json", GOOD)
    with pytest.raises(ProfileError, match="pp2 files are not read"):
        v2_cap_point(path)
    path = write(tmp_path, "batch32.json", GOOD)
    with pytest.raises(ProfileError, match=r"must be bs\{B\}\+tp\{T\}\+pp\{P\}.json"):
        v2_cap_point(path)


def test_concurrency_above_cap(tmp_path: Path) -> None:
    path = write(tmp_path, "bs32+tp1+pp1.json", {**GOOD, "Avg BS (reqs)": 40.0})
    with pytest.raises(ProfileError, match=re.escape(f"{path}: LLM cap 32")):
        v2_cap_point(path)


def test_run_file_errors(tmp_path: Path) -> None:
    write(tmp_path, "bs32+tp1+pp1.json", GOOD)
    write(tmp_path, "bs64+tp1+pp1.json", {**GOOD, "Max BS (reqs)": 64})
    write(tmp_path, "bs64+tp2+pp2.json", {**GOOD, "TP": 2, "PP": 2, "Max BS (reqs)": 128})
    assert [p.cap for p in v2_points(tmp_path, "H100", "org/m", 1)] == [32, 64]
    with pytest.raises(ProfileError, match=r"unknown ML.ENERGY v2 GPU 'h100'; known: "
                                           r"\['A100-40GB', 'H100'\]"):
        v2_run_files(tmp_path, "h100", "org/m", 1)
    with pytest.raises(ProfileError, match=r"no ML.ENERGY v2 chat model 'org/mm' on H100 "
                                           r"\(did you mean 'org/m'\?\); models on H100: "
                                           r"\['org/m'\]"):
        v2_run_files(tmp_path, "H100", "org/mm", 1)
    with pytest.raises(ProfileError, match=r"no bs\*\+tp4\+pp1.json file; tensor-parallel "
                                           r"degrees with pp1 files: \[1\] \(pp > 1 files, "
                                           r"not read: \['tp2\+pp2'\]\)"):
        v2_run_files(tmp_path, "H100", "org/m", 4)
    with pytest.raises(ProfileError, match="root must be the ML.ENERGY v2 'data' folder"):
        v2_run_files(tmp_path, "A100-40GB", "org/m", 1)


def test_weights_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="models.json does not exist"):
        v2_weights_gb(tmp_path, "org/m")
    models = tmp_path / "llm_text_generation" / "chat" / "models.json"
    models.parent.mkdir(parents=True)
    models.write_text(json.dumps({"org/m": {"params": 0}}))
    with pytest.raises(ProfileError, match="'params' must be > 0"):
        v2_weights_gb(tmp_path, "org/m")
    models.write_text("nope")
    with pytest.raises(ProfileError, match="not valid JSON"):
        v2_weights_gb(tmp_path, "org/m")
