"""Convert profile files of format versions 1 and 2 to the current version (3), in place.

Usage::

    python -m envs.model.profile_migrate profiles/old.yaml [more.yaml ...] [--cap-stage chat]
        [--pool-name h100]

Version 1 had one ``batch_sizes`` list for the whole pipeline; version 2 gives each stage
its own (`envs.model.profile_format`): every stage gets the old list. ``--cap-stage NAME``
marks a stage's values as concurrency caps (``knob: cap``, an LLM server's
``max_num_seqs``); they are batch sizes otherwise.

Version 3 replaces the one ``hardware`` entry by a list of device ``pools``; an old file
becomes a one-pool fleet (named ``--pool-name``, default ``cpu`` or ``gpu``):

* ``fleet: elastic`` with ``fleet_nodes: N`` -> ``nodes: N, always_on: 0``;
* ``fleet: fixed`` -> ``always_on: N`` and ``nodes: FIXED_POOL_FACTOR x N`` (version 2 powered
  more nodes whenever an allocation needed them, without a limit; the factor keeps the
  planner's new pool-size row slack for every shipped profile);
* a CPU profile's ``device_idle_w`` was the power of an *allocated* core (the calibration's
  parameter): it becomes ``allocated_w`` with ``device_idle_w: 0``; a GPU profile's stays the
  idle power, now drawn by every GPU of a powered node, allocated or not (the one change
  of behaviour: results on GPU profiles move);
* ``price_per_device_hour: 1``: IPA's cost stays the device count (a convention, no source).

The file keeps its YAML layout (`envs.model.profile_doc.profile_text`'s style is recognised
from the text), and is rewritten only once the converted text loads.

Exit codes: 0 converted (or already current), 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from envs.config.cli import argument_parser, command_line
from envs.config.errors import ProfileError
from envs.config.yaml_io import read_yaml_file
from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import ProfileStyle, stage_entry, write_profile
from envs.model.profile_format import FORMAT_VERSION, MIGRATE_COMMAND

PROG = MIGRATE_COMMAND
FIXED_POOL_FACTOR = 8


def migrated_document(path: Path, doc: Any, cap_stages: frozenset[str] = frozenset(),
                      pool_name: str | None = None) -> dict[str, Any]:
    """A version-1 or version-2 profile document as a version-3 one (the input is not
    changed).

    Args:
        path: The file, for messages.
        doc: Its parsed YAML.
        cap_stages: Stages whose values are concurrency caps (version 1 only).
        pool_name: Name of the one pool (default ``cpu`` or ``gpu``).

    Returns:
        The converted document (``format_version`` first, ``pools`` where ``hardware`` was).

    Raises:
        ProfileError: Not a version-1 or version-2 profile, or a ``cap_stages`` name the
            profile lacks.
    """
    if not isinstance(doc, dict):
        raise ProfileError(f"{path}: not a profile (a YAML mapping); nothing to migrate")
    version = doc.get("format_version", 1)
    if version == 1:
        doc = _per_stage_knobs(path, doc, cap_stages)
    elif version != 2:
        raise ProfileError(f"{path}: format version {version!r} is not one this command "
                           f"converts (1 or 2); nothing to migrate")
    hardware = doc.get("hardware")
    if not isinstance(hardware, dict):
        raise ProfileError(f"{path}: no 'hardware' mapping to turn into a device pool; "
                           "nothing to migrate")
    sources = dict(doc.get("sources") or {})
    pool = _pool(path, hardware, pool_name)
    out: dict[str, Any] = {"format_version": FORMAT_VERSION}
    for key, value in doc.items():
        if key == "format_version":
            continue
        out[key] = [pool] if key == "hardware" else sources if key == "sources" else value
    return {("pools" if k == "hardware" else k): v for k, v in out.items()}


def _pool(path: Path, hw: dict[str, Any], pool_name: str | None) -> dict[str, Any]:
    """A version-2 ``hardware`` mapping as a version-3 pool (module docstring)."""
    try:
        cpu = hw["device"] == "cpu_core"
        nodes = int(hw["fleet_nodes"])
        fixed = hw["fleet"] == "fixed"
        idle = float(hw["device_idle_w"])
        sources = {"node_static_w": hw["static_source"],
                   ("allocated_w" if cpu else "device_idle_w"): hw["idle_source"]}
        if float(hw.get("load_gb_per_s") or 0) > 0:
            sources["load_gb_per_s"] = hw["load_source"]
        return pool_entry(
            pool_name or ("cpu" if cpu else "gpu"), hw["name"], device=hw["device"],
            devices_per_node=int(hw["devices_per_node"]),
            nodes=nodes * FIXED_POOL_FACTOR if fixed else nodes,
            always_on=nodes if fixed else 0, node_static_w=float(hw["node_static_w"]),
            device_idle_w=0.0 if cpu else idle, allocated_w=idle if cpu else 0.0,
            load_gb_per_s=float(hw.get("load_gb_per_s") or 0), sources=sources)
    except (KeyError, TypeError, ValueError) as err:
        raise ProfileError(f"{path}: hardware lacks or garbles {err}; fix the hardware "
                           "entry of the version-2 file first") from None


def _per_stage_knobs(path: Path, doc: dict[str, Any], cap_stages: frozenset[str]
                     ) -> dict[str, Any]:
    """Version 1 -> version 2: every stage gets the pipeline's ``batch_sizes``."""
    sizes = doc.get("batch_sizes")
    stages = doc.get("stages")
    if not isinstance(sizes, list) or not sizes or not isinstance(stages, list):
        raise ProfileError(f"{path}: not a version-1 profile (it needs a top-level "
                           f"'batch_sizes' list and 'stages'); nothing to migrate")
    names = [s.get("name") if isinstance(s, dict) else None for s in stages]
    unknown = sorted(cap_stages - set(names))
    if unknown:
        raise ProfileError(f"{path}: --cap-stage {unknown} is not a stage of this profile; "
                           f"stages: {names}")
    out: dict[str, Any] = {"format_version": 2}
    out.update((k, v) for k, v in doc.items() if k not in ("batch_sizes", "stages"))
    out["stages"] = [
        {**stage_entry(stage["name"], stage.get("variants"), sizes,
                       "cap" if stage["name"] in cap_stages else "batch"),
         **{k: v for k, v in stage.items() if k not in ("name", "variants")}}
        for stage in stages
    ]
    return out


def detected_style(text: str) -> ProfileStyle:
    """The `profile_text` style a profile file was written in.

    Args:
        text: The file's text.

    Returns:
        ``inline`` (mappings of scalars in flow style), ``rows`` (only lists of scalars
        in flow style) or ``block``.
    """
    if re.search(r"^  [\w.-]+: \{kind: ", text, re.MULTILINE):
        return "inline"
    if re.search(r"^row_columns: \[", text, re.MULTILINE):
        return "rows"
    return "block"


def migrate_file(path: Path, cap_stages: frozenset[str] = frozenset(),
                 pool_name: str | None = None) -> bool:
    """Convert one file in place (a no-op when it is already current).

    Args:
        path: The profile file.
        cap_stages: Stages whose values are concurrency caps.
        pool_name: Name of the one pool (default ``cpu`` or ``gpu``).

    Returns:
        True if the file was rewritten.

    Raises:
        ProfileError: A missing file, not a version-1 profile, or a converted text that
            does not load (the file is then left as it was).
    """
    if not path.is_file():
        raise ProfileError(f"{path} does not exist; give the path of a profile .yaml")
    doc = read_yaml_file(path)
    if isinstance(doc, dict) and doc.get("format_version") == FORMAT_VERSION:
        return False
    style = detected_style(path.read_text())
    write_profile(migrated_document(path, doc, cap_stages, pool_name), path, style=style,
                  check=True)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; see the module docstring.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The parsed arguments.
    """
    p = argument_parser(PROG, __doc__)
    p.add_argument("paths", nargs="+", type=Path, help="profile files to convert in place")
    p.add_argument("--cap-stage", action="append", default=[], metavar="NAME",
                   help="a stage whose values are concurrency caps (repeat; version 1)")
    p.add_argument("--pool-name", help="name of the one device pool (default: cpu or gpu)")
    return p.parse_args(argv)


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Convert each file; print one line per file.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        0 (errors exit 2 through `command_line`).
    """
    args = parse_args(argv)
    for path in args.paths:
        done = migrate_file(path, frozenset(args.cap_stage), args.pool_name)
        print(f"{path}: {'converted to' if done else 'already'} format version "
              f"{FORMAT_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
