"""The profile file format (what `energy.profiler` writes and `envs.model.profiles` loads)::

    pipeline: video
    sla_ms: 2000
    batch_sizes: [1, 2, 4, 8]          # what policies may choose; each must be measured
    hardware: {name: ..., device: cpu_core, devices_per_node: 12, node_static_w: 40.0,
               device_idle_w: 0.5, static_source: static, idle_source: idle,
               fleet: fixed, fleet_nodes: 1}
    sources: {latency: {kind: measured, description: ...}, ...}
    row_columns: [batch, cores, latency_mean_ms, latency_p99_ms, energy_per_batch_j,
                  latency_source, energy_source]
    stages:
      - name: detector
        variants:
          - {name: ..., accuracy: 21.3, accuracy_metric: ..., accuracy_source: ...,
             base_cores: 1, rows: [[1, 1, 64.0, 70.1, 0.25, latency, energy], ...]}

`ProfileFile` and its parts map the YAML one-to-one (through the strict loader,
`envs.config.loader.from_dict`); `check_outline` first rejects a document without stages,
variants or rows with a message naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from envs.config.errors import ProfileError
from envs.model.profile_data import FileSourceKind

ROW_COLUMNS = ("batch", "cores", "latency_mean_ms", "latency_p99_ms", "energy_per_batch_j",
               "latency_source", "energy_source")
RowTuple = tuple[int, int, float, float, float, str, str]


@dataclass(frozen=True)
class SourceFile:
    kind: FileSourceKind
    description: str


@dataclass(frozen=True)
class HardwareFile:
    name: str
    device: Literal["cpu_core", "gpu"]
    devices_per_node: int
    node_static_w: float
    device_idle_w: float
    static_source: str
    idle_source: str
    fleet: Literal["elastic", "fixed"]
    fleet_nodes: int
    load_gb_per_s: float = 0.0
    load_source: str | None = None


@dataclass(frozen=True)
class VariantFile:
    name: str
    accuracy: float
    accuracy_metric: str
    accuracy_source: str
    base_cores: int
    rows: tuple[RowTuple, ...]
    weights_gb: float = 0.0


@dataclass(frozen=True)
class StageFile:
    name: str
    variants: tuple[VariantFile, ...]


@dataclass(frozen=True)
class ProfileFile:
    pipeline: str
    sla_ms: float
    batch_sizes: tuple[int, ...]
    hardware: HardwareFile
    sources: dict[str, SourceFile]
    row_columns: tuple[str, ...]
    stages: tuple[StageFile, ...]
    notes: str = ""


def check_outline(path: Path, data: object) -> object:
    """Name the first thing wrong with a profile document in the user's terms.

    Runs before the strict field-by-field loader, so that an empty file or one with no
    stages says so, rather than "missing key 'batch_sizes'".

    Args:
        path: The profile file, for messages.
        data: Its parsed YAML.

    Returns:
        ``data`` unchanged.

    Raises:
        ProfileError: Not a mapping; no stages; a stage without variants; a variant without
            measured rows.
    """
    fix = "energy.profiler writes this format (python -m energy.profiler --pipeline NAME)"
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: not a profile (a YAML mapping with pipeline, sla_ms, "
                           f"batch_sizes, hardware, sources, row_columns and stages); {fix}")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ProfileError(f"{path}: no stages; a profile lists its stages under 'stages:', "
                           f"each with its model variants and their measured rows; {fix}")
    for i, stage in enumerate(stages):
        name, variants = _name_and_list(stage, i, "variants")
        if not variants:
            raise ProfileError(f"{path}: stage {name!r} has no variants; list at least one "
                               f"under its 'variants:'")
        for j, variant in enumerate(variants):
            label, rows = _name_and_list(variant, j, "rows")
            if not rows:
                raise ProfileError(f"{path}: variant {label!r} of stage {name!r} has no "
                                   f"measured rows; profile it ({fix})")
    return data


def _name_and_list(item: object, index: int, key: str) -> tuple[object, list]:
    """An entry's name (``#index`` without one) and its ``key`` list ([] if not a list)."""
    if not isinstance(item, dict):
        return f"#{index}", []
    value = item.get(key)
    return item.get("name", f"#{index}"), value if isinstance(value, list) else []
