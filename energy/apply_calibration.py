"""Apply a calibrated CPU power model to a profile: ``python -m energy.apply_calibration``.

A calibration file (written by ``benchmarks/energy_calibration.py --out``) holds three
fitted parameters: the node's static power, the idle power of an allocated core (the file's
``device_idle_w``), and the power of a busy core. Applied to a one-pool CPU profile, the
pool takes the first two (``node_static_w`` and ``allocated_w``; ``device_idle_w`` 0: the
package's idle is in the static power), the pool's nodes become ``--fleet-nodes`` always on
of a pool of `FIXED_POOL_FACTOR` times as many,
and every row's dynamic energy becomes ``busy_w_per_core x cores x mean batch latency``
(a replica keeps all its cores busy while it computes a batch). Latencies are untouched.
Every figure is labelled ``calibrated`` with the calibration's own description; where the
calibration's hardware is not the profile's, a line appended to the profile's notes says
that the power parameters come from that other machine.

Usage::

    python -m energy.apply_calibration profiles/video.yaml \\
        --calibration profiles/calibration/xeon_gold_6126_rapl.yaml --devices-per-node 12
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envs.config.cli import argument_parser, command_line, positive_int
from envs.config.errors import ConfigError, ProfileError
from envs.config.loader import from_dict
from envs.config.yaml_io import read_yaml_file
from envs.model import power
from envs.model.profile_doc import write_profile
from envs.model.profile_migrate import FIXED_POOL_FACTOR

PROG = "python -m energy.apply_calibration"

CALIBRATED_DYNAMIC = "calibrated_dynamic"
CALIBRATED_STATIC = "calibrated_static"
CALIBRATED_IDLE = "calibrated_idle"


@dataclass(frozen=True)
class Calibration:
    """A fitted CPU power model (see the module docstring)."""

    hardware: str
    node_static_w: float
    device_idle_w: float
    busy_w_per_core: float
    description: str


def read_calibration(path: Path) -> Calibration:
    """Load a calibration file.

    Args:
        path: The YAML file (``benchmarks/energy_calibration.py --out`` writes it).

    Returns:
        The calibration.

    Raises:
        ConfigError: Missing file, missing or mistyped keys, or negative powers.
    """
    calibration = from_dict(Calibration, read_yaml_file(path))
    if min(calibration.node_static_w, calibration.device_idle_w,
           calibration.busy_w_per_core) < 0:
        raise ConfigError(f"{path}: calibrated powers must be >= 0 W")
    return calibration


def calibrated_profile(doc: dict[str, Any], calibration: Calibration, devices_per_node: int,
                       fleet_nodes: int) -> dict[str, Any]:
    """A copy of the profile document ``doc`` with the calibrated power model.

    Args:
        doc: A CPU profile as read from YAML.
        calibration: The fitted parameters.
        devices_per_node: Cores of one node (the measured package's cores).
        fleet_nodes: Nodes of the fixed fleet.

    Returns:
        The calibrated document (``doc`` is not changed); its notes say where the
        parameters come from when that is not the profile's hardware.

    Raises:
        ProfileError: ``doc`` is not a CPU profile.
    """
    pools = doc.get("pools")
    if not (isinstance(pools, list) and len(pools) == 1 and isinstance(pools[0], dict)
            and pools[0].get("device") == "cpu_core"):
        raise ProfileError("a CPU calibration applies only to profiles with one device pool "
                           "whose device is 'cpu_core'")
    out = yaml.safe_load(yaml.safe_dump(doc))
    pool = out["pools"][0]
    if calibration.hardware != pool.get("device_name"):
        line = (f"Power model (node static, idle and busy power) calibrated on "
                f"{calibration.hardware}, not on {pool.get('device_name')}, where the "
                "latencies were measured (energy.apply_calibration).")
        notes = str(out.get("notes") or "")
        if line not in notes:
            out["notes"] = f"{notes} {line}".strip()
    source = f"{calibration.description} (parameters of {calibration.hardware})"
    pool.update(
        node_static_w=calibration.node_static_w, device_idle_w=0.0,
        allocated_w=calibration.device_idle_w, devices_per_node=devices_per_node,
        nodes=fleet_nodes * FIXED_POOL_FACTOR, always_on=fleet_nodes)
    pool["sources"] = {**pool.get("sources", {}), "node_static_w": CALIBRATED_STATIC,
                       "allocated_w": CALIBRATED_IDLE}
    pool["sources"].pop("device_idle_w", None)
    out["sources"][CALIBRATED_STATIC] = {"kind": "calibrated", "description":
                                         f"node static power: {source}"}
    out["sources"][CALIBRATED_IDLE] = {"kind": "calibrated", "description":
                                       f"idle power per allocated core: {source}"}
    out["sources"][CALIBRATED_DYNAMIC] = {"kind": "calibrated", "description": (
        f"dynamic energy = {calibration.busy_w_per_core:g} W per busy core x cores x mean "
        f"batch latency; busy power per core: {source}")}
    used = set()
    for stage in out["stages"]:
        for variant in stage["variants"]:
            for row in variant["rows"]:
                row[4] = round(power.busy_batch_energy_j(calibration.busy_w_per_core, row[1],
                                                        row[2]), 6)
                row[6] = CALIBRATED_DYNAMIC
                used.add(row[5])
    keep = used | {CALIBRATED_STATIC, CALIBRATED_IDLE, CALIBRATED_DYNAMIC}
    out["sources"] = {k: v for k, v in out["sources"].items() if k in keep}
    return out


@command_line(PROG)
def main(argv: list[str] | None = None) -> None:
    """Apply a calibration to profiles in place (see the module docstring).

    Each profile is rewritten only once its calibrated version loads.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Raises:
        ConfigError: A bad calibration file, or a profile that cannot be written.
        ProfileError: A profile that is not a CPU profile, or would not load afterwards
            (it is left as it was).
    """
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--calibration", type=Path, required=True)
    parser.add_argument("--devices-per-node", type=positive_int, default=12,
                        help="cores of one node (default: the Xeon Gold 6126's 12)")
    parser.add_argument("--fleet-nodes", type=positive_int, default=1)
    args = parser.parse_args(argv)
    calibration = read_calibration(args.calibration)
    for path in args.profiles:
        doc = calibrated_profile(read_yaml_file(path), calibration, args.devices_per_node,
                                 args.fleet_nodes)
        write_profile(doc, path, style="inline", check=True)
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
