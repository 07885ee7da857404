"""CPU package and DRAM energy from the Linux powercap (RAPL) sysfs tree."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from energy.errors import MeterPermissionError, MeterReadError, MeterUnavailableError
from envs.metering.meter import Meter
from envs.metering.reading import EnergyReading

__all__ = ["RaplMeter", "RaplZone"]

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")

# intel-rapl:0 (package) and intel-rapl:0:2 (subzone). AMD CPUs expose the same layout, under
# "intel-rapl" on most kernels and "amd-rapl" on some. "intel-rapl-mmio:N" zones mirror the MSR
# package zones on some platforms, so they are deliberately not matched (double counting).
_ZONE_DIR = re.compile(r"^(?:intel|amd)-rapl:\d+(?::\d+)?$")
_PACKAGE_NAME = re.compile(r"^package-\d+$")

_PERMISSION_FIX = (
    "RAPL energy counters are readable by root only since CVE-2020-8694 (Platypus); run with "
    "sudo, or grant read access once per boot with "
    "`sudo chmod o+r {root}/intel-rapl:*/energy_uj {root}/intel-rapl:*/intel-rapl:*/energy_uj`"
)


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone that the meter reads.

    Attributes:
        zone_id: Directory name, e.g. ``"intel-rapl:0"`` or ``"intel-rapl:0:2"``.
        name: Contents of the zone's ``name`` file, e.g. ``"package-0"`` or ``"dram"``.
        domain: ``"cpu_package"`` or ``"dram"``.
        energy_path: The ``energy_uj`` counter file.
        max_range_uj: ``max_energy_range_uj``, the value at which the counter wraps to zero.
    """

    zone_id: str
    name: str
    domain: str
    energy_path: Path
    max_range_uj: int

    @property
    def label(self) -> str:
        """Key of this zone in ``EnergyReading.components``."""
        return f"{self.zone_id} {self.name}"


def _domain_of(name: str) -> str | None:
    """Map a zone ``name`` to a reading domain; None for zones that must not be summed.

    ``psys`` covers the whole platform (package + DRAM + more) and ``core``/``uncore`` are
    inside their package, so counting any of them would count energy twice.
    """
    if _PACKAGE_NAME.match(name):
        return "cpu_package"
    if name == "dram":
        return "dram"
    return None


def _permission_error(path: Path, root: Path, err: OSError) -> MeterPermissionError:
    return MeterPermissionError(
        f"permission denied reading {path} ({err.strerror}): "
        + _PERMISSION_FIX.format(root=root)
        + "; or choose --meter nvml/tdp"
    )


def _read_int(path: Path, root: Path) -> int:
    # os.open/os.read instead of Path.read_text: a third of the cost, and this runs for every
    # zone at every window edge. The file is reopened each time (sysfs regenerates it on open).
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            text = os.read(fd, 64).decode("ascii", "replace")
        finally:
            os.close(fd)
    except PermissionError as err:
        raise _permission_error(path, root, err) from err
    except OSError as err:
        raise MeterReadError(
            f"cannot read RAPL counter {path}: {err}; check that the intel_rapl_msr module is "
            "still loaded (lsmod | grep rapl)"
        ) from err
    try:
        return int(text.strip())
    except ValueError:
        raise MeterReadError(
            f"RAPL counter {path} holds {text.strip()!r}, not an integer number of microjoules"
        ) from None


def discover_zones(root: Path) -> list[RaplZone]:
    """Find the package and DRAM zones under a powercap root.

    Both the top-level entries (``root/intel-rapl:0:2`` symlinks, as in sysfs) and the nested
    subzone directories (``root/intel-rapl:0/intel-rapl:0:2``) are searched; a zone found both
    ways is read once.

    Args:
        root: The powercap directory, normally ``/sys/class/powercap``.

    Returns:
        The zones sorted by id; empty when there are none.

    Raises:
        MeterPermissionError: A directory or ``name`` file cannot be read.
    """
    candidates: dict[str, Path] = {}
    try:
        tops = [p for p in root.iterdir() if _ZONE_DIR.match(p.name)]
        for top in tops:
            candidates.setdefault(top.name, top)
            for sub in top.iterdir():
                if _ZONE_DIR.match(sub.name):
                    candidates.setdefault(sub.name, sub)
    except PermissionError as err:
        raise _permission_error(Path(err.filename or root), root, err) from err
    except (FileNotFoundError, NotADirectoryError):
        return []

    zones = []
    for zone_id, path in candidates.items():
        try:
            name = (path / "name").read_text().strip()
        except PermissionError as err:
            raise _permission_error(path / "name", root, err) from err
        except OSError:
            continue  # not a zone (no name file)
        domain = _domain_of(name)
        if domain is None:
            continue
        max_range = _read_int(path / "max_energy_range_uj", root)
        zones.append(RaplZone(zone_id, name, domain, path / "energy_uj", max_range))
    return sorted(zones, key=lambda z: [int(x) for x in z.zone_id.split(":")[1:]])


class RaplMeter(Meter):
    """Reads RAPL ``energy_uj`` counters of every CPU package and DRAM zone.

    Each window is the difference of two counter snapshots; a counter that went down was
    wrapped once and ``max_energy_range_uj`` is added. A window long enough to wrap a counter
    twice (at 200 W, about 20 minutes for a 262 kJ range) cannot be detected and is undercounted;
    keep windows shorter than that.

    Args:
        root: The powercap directory; tests point it at a fake tree.

    Raises:
        MeterUnavailableError: No package zone exists under ``root``.
        MeterPermissionError: The counters exist but cannot be read by this user.
    """

    name = "rapl"

    def __init__(self, root: Path = DEFAULT_POWERCAP_ROOT) -> None:
        super().__init__()
        self.root = Path(root)
        self.zones = discover_zones(self.root)
        if not any(z.domain == "cpu_package" for z in self.zones):
            found = ", ".join(z.label for z in self.zones) or (
                "nothing" if self.root.is_dir() else "the directory does not exist"
            )
            raise MeterUnavailableError(
                f"no RAPL package zones found under {self.root} (found {found}); on bare-metal "
                "Linux load the driver with `sudo modprobe intel_rapl_msr` (AMD too), virtual "
                "machines and containers usually have no RAPL; or choose --meter nvml/tdp"
            )
        self._has_dram = any(z.domain == "dram" for z in self.zones)
        self._snapshot()  # fail now, not in the first window, if the counters are unreadable

    def _snapshot(self) -> tuple[float, list[int]]:
        return time.perf_counter(), [_read_int(z.energy_path, self.root) for z in self.zones]

    def _open(self, key: str) -> tuple[float, list[int]]:
        return self._snapshot()

    def _close(self, key: str, state: tuple[float, list[int]]) -> EnergyReading:
        t1, counters1 = self._snapshot()
        t0, counters0 = state
        totals = {"cpu_package": 0.0, "dram": 0.0}
        components = {}
        for zone, c0, c1 in zip(self.zones, counters0, counters1, strict=True):
            delta_uj = c1 - c0 if c1 >= c0 else c1 + zone.max_range_uj - c0
            joules = delta_uj / 1e6
            totals[zone.domain] += joules
            components[zone.label] = joules
        return EnergyReading(
            seconds=t1 - t0,
            source=f"rapl:{self.root}",
            estimated=False,
            method="powercap energy_uj counter difference (package + dram zones, psys excluded)",
            cpu_package_j=totals["cpu_package"],
            dram_j=totals["dram"] if self._has_dram else None,
            components=components,
        )
