"""Tests of the energy meters against real code paths (fake powercap trees, the real NVML)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

import pytest

import energy
from energy import (
    EnergyReading,
    MeterPermissionError,
    MeterUnavailableError,
    MeterWindowError,
    NvmlMeter,
    PowerIntegrator,
    RaplMeter,
    TdpEstimator,
    ZeusMeter,
    make_meter,
)
from envs.config.errors import ConfigError, IpaEnergyError

REPO = Path(__file__).resolve().parents[1]
MAX_RANGE_UJ = 262_143_328_850


def write_atomic(path: Path, text: str) -> None:
    """Replace a file's contents the way sysfs readers expect: never half-written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def make_zone(directory: Path, name: str, energy_uj: int, max_range: int = MAX_RANGE_UJ) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / "name", f"{name}\n")
    write_atomic(directory / "max_energy_range_uj", f"{max_range}\n")
    write_atomic(directory / "energy_uj", f"{energy_uj}\n")
    return directory / "energy_uj"


def set_uj(counter: Path, value: int) -> None:
    write_atomic(counter, f"{value}\n")


def build_tree(root: Path) -> dict[str, Path]:
    """A two-socket powercap tree laid out like sysfs, plus zones that must not be counted."""
    (root / "intel-rapl").mkdir(parents=True)  # the control-type directory, not a zone
    counters = {
        "pkg0": make_zone(root / "intel-rapl:0", "package-0", 1_000_000),
        "core0": make_zone(root / "intel-rapl:0" / "intel-rapl:0:0", "core", 500_000),
        "dram0": make_zone(root / "intel-rapl:0" / "intel-rapl:0:2", "dram", 2_000_000),
        "pkg1": make_zone(root / "intel-rapl:1", "package-1", 3_000_000),
        "dram1": make_zone(root / "intel-rapl:1" / "intel-rapl:1:0", "dram", 4_000_000),
        "psys": make_zone(root / "intel-rapl:2", "psys", 9_000_000),
        "mmio": make_zone(root / "intel-rapl-mmio:0", "package-0", 7_000_000),
    }
    # sysfs also links every subzone at the top level; the meter must read each zone once
    for sub in ("intel-rapl:0/intel-rapl:0:0", "intel-rapl:0/intel-rapl:0:2"):
        (root / Path(sub).name).symlink_to(root / sub, target_is_directory=True)
    return counters


def bump(counters: dict[str, Path], **joules: float) -> None:
    for key, j in joules.items():
        current = int(counters[key].read_text())
        set_uj(counters[key], current + round(j * 1e6))


def gpu_present() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return False
    try:
        return pynvml.nvmlDeviceGetCount() > 0
    finally:
        pynvml.nvmlShutdown()


HAS_GPU = gpu_present()


# ---------------------------------------------------------------------------- EnergyReading


def test_reading_total_and_domains() -> None:
    r = EnergyReading(2.0, "test", False, "m", gpu_j=10.0, cpu_package_j=5.0)
    assert r.total_j == 15.0
    assert r.mean_power_w == 7.5
    assert r.domains == {"gpu": 10.0, "cpu_package": 5.0}
    assert r.dram_j is None
    hash(r)  # frozen and hashable despite the components mapping
    with pytest.raises(ValueError, match="covers no domain"):
        EnergyReading(1.0, "test", False, "m")
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        EnergyReading(1.0, "test", False, "m", dram_j=-1.0)


def test_negative_delta_is_a_meter_read_error() -> None:
    # A counter reset or double wrap gives a negative delta: the meter's error, which
    # energy.MeterReadError handlers catch; a NaN stays a plain ValueError (not a counter).
    with pytest.raises(energy.MeterReadError, match="counter was reset"):
        EnergyReading(1.0, "rapl", False, "m", cpu_package_j=-3.0)
    with pytest.raises(ValueError) as nan:
        EnergyReading(1.0, "rapl", False, "m", cpu_package_j=float("nan"))
    assert not isinstance(nan.value, energy.MeterReadError)


# ---------------------------------------------------------------------------- RAPL


def test_rapl_counts_packages_and_dram_not_psys(tmp_path: Path) -> None:
    counters = build_tree(tmp_path)
    meter = RaplMeter(tmp_path)
    assert [z.zone_id for z in meter.zones] == [
        "intel-rapl:0",
        "intel-rapl:0:2",
        "intel-rapl:1",
        "intel-rapl:1:0",
    ]
    meter.begin("w")
    bump(counters, pkg0=5.0, pkg1=3.0, dram0=1.0, dram1=0.5, psys=100.0, core0=2.0, mmio=5.0)
    r = meter.end("w")
    assert r.cpu_package_j == pytest.approx(8.0)
    assert r.dram_j == pytest.approx(1.5)
    assert r.gpu_j is None
    assert r.total_j == pytest.approx(9.5)  # psys (100 J) and core/mmio are not counted
    assert not any("psys" in k or "core" in k or "mmio" in k for k in r.components)
    assert r.components["intel-rapl:1 package-1"] == pytest.approx(3.0)
    assert r.estimated is False
    assert r.source == f"rapl:{tmp_path}"
    assert r.seconds > 0


def test_rapl_wraparound_uses_max_energy_range(tmp_path: Path) -> None:
    zone = tmp_path / "intel-rapl:0"
    counter = make_zone(zone, "package-0", 999_000_000, max_range=1_000_000_000)
    meter = RaplMeter(tmp_path)
    meter.begin("w")
    set_uj(counter, 2_000_000)  # wrapped: 1 J to the top, then 2 J
    r = meter.end("w")
    assert r.cpu_package_j == pytest.approx(3.0)
    assert r.dram_j is None  # no dram zone in this tree


def test_rapl_overlapping_windows(tmp_path: Path) -> None:
    counters = build_tree(tmp_path)
    meter = RaplMeter(tmp_path)
    meter.begin("episode")
    bump(counters, pkg0=1.0)
    meter.begin("step")
    assert meter.open_keys == ("episode", "step")
    bump(counters, pkg0=2.0)
    assert meter.end("step").cpu_package_j == pytest.approx(2.0)
    bump(counters, pkg1=4.0)
    assert meter.end("episode").cpu_package_j == pytest.approx(7.0)
    assert meter.open_keys == ()


def test_window_key_errors(tmp_path: Path) -> None:
    build_tree(tmp_path)
    meter = RaplMeter(tmp_path)
    with pytest.raises(MeterWindowError, match="'nope'.*never begun"):
        meter.end("nope")
    meter.begin("a")
    with pytest.raises(MeterWindowError, match="already open"):
        meter.begin("a")
    meter.cancel("a")
    with pytest.raises(MeterWindowError):
        meter.end("a")
    assert issubclass(MeterWindowError, IpaEnergyError)


def test_rapl_missing_tree_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailableError, match="no RAPL package zones") as info:
        RaplMeter(tmp_path / "does-not-exist")
    assert "modprobe intel_rapl_msr" in str(info.value)
    assert "--meter" in str(info.value)
    assert isinstance(info.value, IpaEnergyError) and isinstance(info.value, RuntimeError)
    make_zone(tmp_path / "intel-rapl:0", "psys", 0)  # a psys-only tree is no package either
    with pytest.raises(MeterUnavailableError, match="found intel-rapl:0 psys|found nothing"):
        RaplMeter(tmp_path)


@pytest.fixture
def world_readable_tmp() -> Path:
    """A temp dir directly under /tmp, traversable by ``nobody`` (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="rapl-perm-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root to drop privileges to uid 65534 (nobody)",
)
def test_rapl_permission_denied_message(world_readable_tmp: Path) -> None:
    root = world_readable_tmp / "powercap"
    counter = make_zone(root / "intel-rapl:0", "package-0", 1_000_000)
    for d in (root, root / "intel-rapl:0"):
        d.chmod(0o755)
    counter.chmod(0o400)  # as on kernels patched for CVE-2020-8694
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from energy import MeterPermissionError, RaplMeter
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
        try:
            RaplMeter({str(root)!r})
        except MeterPermissionError as err:
            print(err)
            sys.exit(3)
        print("read the counter without permission")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = proc.stdout
    assert f"permission denied reading {counter}" in message
    assert "CVE-2020-8694" in message
    assert "sudo" in message and "chmod o+r" in message
    assert issubclass(MeterPermissionError, MeterUnavailableError)


# ---------------------------------------------------------------------------- NVML / Zeus


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA GPU")
def test_nvml_unavailable_without_gpu() -> None:
    with pytest.raises(MeterUnavailableError, match="no NVIDIA GPU found via NVML") as info:
        NvmlMeter()
    assert "--meter rapl/tdp" in str(info.value)


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA GPU")
def test_zeus_unavailable_without_gpu() -> None:
    with pytest.raises(MeterUnavailableError, match="zeus found no GPU"):
        ZeusMeter()


@pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA GPU on this machine")
def test_nvml_measures_gpu_energy() -> None:
    with NvmlMeter(gpu_indices=[0]) as meter:
        meter.begin("idle")
        time.sleep(1.0)
        r = meter.end("idle")
    assert r.gpu_j is not None and r.gpu_j > 0  # an idle GPU still draws tens of watts
    assert 1.0 <= r.seconds < 5.0
    assert r.source in {"nvml:counter", "nvml:integrated"}
    assert 1.0 < r.mean_power_w < 2000.0


@pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA GPU on this machine")
def test_zeus_measures_gpu_energy() -> None:
    meter = ZeusMeter(gpu_indices=[0], sync_execution=False)
    meter.begin("idle")
    time.sleep(1.0)
    r = meter.end("idle")
    assert r.gpu_j is not None and r.gpu_j > 0
    assert r.source == "zeus" and r.components.keys() == {"gpu0"}


class _StubNvml(types.ModuleType):
    """Stand-in for pynvml where no GPU exists: GPU 0 has an energy counter, GPU 1 only power.

    Only exercises NvmlMeter's own branching (counter vs integrated fallback); the real NVML is
    covered by the GPU tests above.
    """

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.energy_mj = 1_000_000
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        if handle == 1:
            raise self.NVMLError_NotSupported("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 100_000  # 100 W


def test_nvml_falls_back_to_integrated_power(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = _StubNvml()
    monkeypatch.setitem(sys.modules, "pynvml", stub)
    with NvmlMeter(sample_period_s=0.01) as meter:
        meter.begin("w")
        time.sleep(0.1)
        stub.energy_mj += 2_500  # GPU 0 used 2.5 J
        r = meter.end("w")
        with pytest.raises(MeterUnavailableError, match="do not exist"):
            NvmlMeter(gpu_indices=[5])
    assert r.components["gpu0"] == pytest.approx(2.5)
    assert r.components["gpu1"] == pytest.approx(100.0 * r.seconds, rel=0.05)
    assert r.gpu_j == pytest.approx(r.components["gpu0"] + r.components["gpu1"])
    assert r.source == "nvml:counter+integrated"
    assert "integrated power samples" in r.method and "counter" in r.method
    assert stub.shutdowns == 2


def test_power_integrator_trapezoid() -> None:
    now = [0.0]
    integrator = PowerIntegrator(lambda: [10.0 * now[0], 50.0], period_s=3600, clock=lambda: now[0])
    try:
        t0, e0 = integrator.snapshot()
        now[0] = 1.0
        integrator.snapshot()
        now[0] = 3.0
        t1, e1 = integrator.snapshot()
    finally:
        integrator.stop()
    assert t1 - t0 == 3.0
    assert e1[0] - e0[0] == pytest.approx(45.0)  # integral of 10 t over [0, 3]
    assert e1[1] - e0[1] == pytest.approx(150.0)


# ---------------------------------------------------------------------------- TDP estimate


def test_tdp_busy_loop_has_utilisation() -> None:
    meter = TdpEstimator(tdp_w=100.0, idle_w=20.0, cores=1)
    meter.begin("busy")
    deadline = time.perf_counter() + 0.3
    x = 0
    while time.perf_counter() < deadline:
        x += 1
    r = meter.end("busy")
    assert r.estimated is True
    assert r.source == "tdp-estimate"
    assert "TDP" in r.method and "utilisation" in r.method
    assert r.cpu_package_j > 20.0 * r.seconds  # above idle: the loop used CPU
    assert r.gpu_j is None


def test_tdp_with_utilisation_callable_is_exact() -> None:
    meter = TdpEstimator(tdp_w=100.0, idle_w=20.0, cores=8, utilisation=lambda: 0.25)
    meter.begin("w")
    r = meter.end("w")
    assert r.cpu_package_j == (20.0 + (100.0 - 20.0) * 0.25) * r.seconds
    assert r.estimated is True
    bad = TdpEstimator(100.0, 20.0, 1, utilisation=lambda: 1.5)
    bad.begin("w")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bad.end("w")
    with pytest.raises(ValueError, match="idle_w <= tdp_w"):
        TdpEstimator(tdp_w=10.0, idle_w=20.0, cores=1)


# ---------------------------------------------------------------------------- factory


def test_make_meter(tmp_path: Path) -> None:
    build_tree(tmp_path)
    assert isinstance(make_meter("rapl", root=tmp_path), RaplMeter)
    assert isinstance(make_meter("TDP", tdp_w=65, idle_w=10, cores=4), TdpEstimator)
    with pytest.raises(ConfigError, match="did you mean 'rapl'"):
        make_meter("rpal")
    with pytest.raises(ConfigError, match="choose one of: nvml, rapl, tdp, zeus"):
        make_meter("wattmeter")
    with pytest.raises(ConfigError, match="meter 'tdp' takes"):
        make_meter("tdp", tdp=65)
