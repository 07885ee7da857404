"""The RAPL calibration: the benchmark on a short slice, and applying a calibration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from energy.apply_calibration import Calibration, calibrated_profile
from envs.config.errors import ProfileError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.mark.skipif(not (DATA / "ipa" / "ipa_ext_energy").is_dir(),
                    reason="reference data ../shared/data/ipa is not on this machine")
def test_calibration_benchmark_on_a_slice(tmp_path: Path) -> None:
    out = tmp_path / "cal.yaml"
    run = subprocess.run([sys.executable, "benchmarks/energy_calibration.py", "--slice-s",
                          "120", "--out", str(out)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    metrics = dict(line.split("=", 1) for line in run.stdout.splitlines()[-6:])
    assert set(metrics) == {"node_static_w", "device_idle_w", "busy_w_per_core",
                            "splits_meeting_goal", "power_error_median", "ratio_error_max"}
    # the package idles at about 73 W (ipa-ext): the fitted static power is near it
    assert 60.0 < float(metrics["node_static_w"]) < 120.0
    assert 0.0 <= float(metrics["power_error_median"]) < 0.5
    assert yaml.safe_load(out.read_text())["node_static_w"] == pytest.approx(
        float(metrics["node_static_w"]), abs=1e-3)


def test_calibration_file_missing_is_a_clear_error(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "energy.apply_calibration", "x.yaml",
                          "--calibration", str(tmp_path / "none.yaml")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "none.yaml" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_applied_calibration_by_hand(tiny_profile_path: Path) -> None:
    """2 W per busy core: a 2-core row of 50 ms mean latency costs 2 x 2 x 0.05 = 0.2 J."""
    doc = yaml.safe_load(tiny_profile_path.read_text())
    cal = Calibration("hand CPU", 80.0, 0.5, 2.0, "by hand")
    out = calibrated_profile(doc, cal, devices_per_node=12, fleet_nodes=2)
    pool = out["pools"][0]
    assert (pool["node_static_w"], pool["device_idle_w"], pool["allocated_w"]) == (80.0, 0.0, 0.5)
    assert (pool["always_on"], pool["nodes"]) == (2, 16)  # 2 always on, of 8 x 2
    row = next(r for r in out["stages"][0]["variants"][0]["rows"] if r[1] == 2)
    assert row[4] == pytest.approx(2.0 * 2 * row[2] / 1e3)
    assert out["sources"][row[6]]["kind"] == "calibrated"
    doc["pools"][0]["device"] = "gpu"
    with pytest.raises(ProfileError, match="cpu_core"):
        calibrated_profile(doc, cal, 12, 1)


def test_calibration_on_other_hardware_is_said_in_the_notes(tiny_profile_path: Path) -> None:
    doc = yaml.safe_load(tiny_profile_path.read_text())
    cal = Calibration("hand CPU", 80.0, 0.5, 2.0, "by hand")
    notes = calibrated_profile(doc, cal, 12, 1)["notes"]
    assert "calibrated on hand CPU, not on" in notes
    assert calibrated_profile({**doc, "notes": notes}, cal, 12, 1)["notes"] == notes  # once


def test_zero_devices_per_node_leaves_the_profile_as_it_was(tmp_path: Path,
                                                            tiny_profile_path: Path) -> None:
    cal = tmp_path / "cal.yaml"
    cal.write_text(yaml.safe_dump({"hardware": "hand CPU", "node_static_w": 80.0,
                                   "device_idle_w": 0.5, "busy_w_per_core": 2.0,
                                   "description": "by hand"}))
    before = tiny_profile_path.read_text()
    for flag in ("--devices-per-node", "--fleet-nodes"):
        run = subprocess.run([sys.executable, "-m", "energy.apply_calibration",
                              str(tiny_profile_path), "--calibration", str(cal), flag, "0"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert f"argument {flag}: '0' must be an integer >= 1" in run.stderr
        assert tiny_profile_path.read_text() == before
    run = subprocess.run([sys.executable, "-m", "energy.apply_calibration",
                          str(tiny_profile_path), "--calibration", str(cal)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert yaml.safe_load(tiny_profile_path.read_text())["pools"][0]["node_static_w"] == 80.0
