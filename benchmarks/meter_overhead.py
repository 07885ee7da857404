"""Time one begin+end window of RaplMeter (on a fake powercap tree) and of TdpEstimator.

Run from the repository root: ``python benchmarks/meter_overhead.py [--windows N]``.
The last line is ``rapl_window_us=<median microseconds>``; the line before it is
``tdp_window_us=<median microseconds>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy.meters.estimator import TdpEstimator  # noqa: E402
from energy.meters.rapl import RaplMeter  # noqa: E402
from envs.config.cli import command_line, positive_int  # noqa: E402
from envs.metering.meter import Meter  # noqa: E402


def build_fake_powercap(root: Path, sockets: int = 2) -> None:
    """Write a sysfs-like tree: per socket a package zone, a core and a dram subzone, + psys."""

    def zone(path: Path, name: str) -> None:
        path.mkdir(parents=True)
        for fname, value in (("name", name), ("max_energy_range_uj", "262143328850")):
            (path / fname).write_text(value + "\n")
        tmp = path / "energy_uj.tmp"
        tmp.write_text("123456789\n")
        os.replace(tmp, path / "energy_uj")

    for s in range(sockets):
        pkg = root / f"intel-rapl:{s}"
        zone(pkg, f"package-{s}")
        zone(pkg / f"intel-rapl:{s}:0", "core")
        zone(pkg / f"intel-rapl:{s}:1", "dram")
    zone(root / f"intel-rapl:{sockets}", "psys")


def median_window_us(meter: Meter, windows: int) -> float:
    """Median wall time of ``begin(key)`` + ``end(key)`` in microseconds."""
    for i in range(min(100, windows)):  # warm-up: page cache, allocator
        meter.begin(f"warm{i}")
        meter.end(f"warm{i}")
    samples = []
    for i in range(windows):
        key = f"w{i}"
        t0 = time.perf_counter()
        meter.begin(key)
        meter.end(key)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


@command_line("python benchmarks/meter_overhead.py")
def main() -> None:
    """Build the fake tree, time both meters, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=positive_int, default=2000,
                        help="windows timed per meter")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fake-powercap-") as tmp:
        root = Path(tmp)
        build_fake_powercap(root)
        rapl = RaplMeter(root)
        print(f"rapl zones read per snapshot: {len(rapl.zones)} ({args.windows} windows)")
        rapl_us = median_window_us(rapl, args.windows)
    tdp_us = median_window_us(TdpEstimator(tdp_w=125.0, idle_w=25.0, cores=8), args.windows)
    print(f"tdp_window_us={tdp_us:.2f}")
    print(f"rapl_window_us={rapl_us:.2f}")


if __name__ == "__main__":
    sys.exit(main())
