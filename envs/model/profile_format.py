"""The profile file format (what `energy.profiler` writes and `envs.model.profiles` loads)::

    format_version: 3
    pipeline: video
    sla_ms: 2000
    pools:                               # one per device type (envs.model.fleet.DevicePool)
      - {name: cpu, device_name: ..., device: cpu_core, devices_per_node: 12,
         nodes: 8, always_on: 1,         # pool size; nodes powered whatever the allocation
         node_static_w: 84.1,            # per powered node (host)
         device_idle_w: 0.0,             # every device of a powered node
         allocated_w: 0.0,               # each allocated device, beyond idle (CPU calibration)
         price_per_device_hour: 1.0,     # dollars (1: IPA's cost is the device count)
         boot_s: 0, hold_s: 0,           # node power-on time; idle time before power-off
         load_gb_per_s: 0, memory_gb: 0, # weight loading; device memory (0: not checked)
         sources: {node_static_w: static, allocated_w: idle, price_per_device_hour: unit}}
    sources: {latency: {kind: measured, description: ...}, ...}
    row_columns: [batch, cores, latency_mean_ms, latency_p99_ms, energy_per_batch_j,
                  latency_source, energy_source]
    stages:
      - name: detector
        knob: batch                      # or cap: an LLM server's concurrency cap
        batch_sizes: [1, 2, 4, 8]        # what policies may choose; each must be measured
        variants:
          - {name: ..., accuracy: 21.3, accuracy_metric: ..., accuracy_source: ...,
             base_cores: 1, rows: [[1, 1, 64.0, 70.1, 0.25, latency, energy], ...],
             pool: cpu}                  # optional when the fleet has one pool

A variant of a ``knob: cap`` stage may also say how it serves under continuous batching
(`envs.model.continuous.ContinuousServing`; ``python -m energy.import_mlenergy --continuous``
writes it)::

            continuous:
              points_source: <source id>   # measured: one saturated run per cap
              points: [[cap, concurrency, tokens_per_s, power_w, itl_median_ms,
                        itl_p99_ms], ...]  # one per cap, increasing (the replica's curve)
              output_lengths: {bins: [edges...], counts: [requests per bin...]}
              max_running: 40              # optional: admission limit of a per-token target
              idle_w: 75.0                 # the replica's idle power the curve and tables use
              tables_source: <source id>   # estimated: simulated from the points
              tables:                      # one per cap in the stage's batch_sizes
                - {cap: 8, saturated_rps: 2.7, loads: [0.05, ...], p99_ms: [...],
                   mean_ms: [...], power_w: [...]}

A table's ``power_w`` is the replica's mean power, its idle power ``idle_w`` (its pool's
``device_idle_w`` x ``base_cores`` GPUs when imported) included; the loader checks the block
(`envs.model.profile_continuous`) and builds nothing else from it. The stage's dynamic power
is measured above ``idle_w``, whatever idle power the pool is later given (a sensitivity
run): the replica's power is ``idle in force + (P - idle_w)``, as the rows' dynamic energy
is fixed. The static ``rows`` stay
(tools that read rows use them).

`ProfileFile` and its parts map the YAML one-to-one (through the strict loader,
`envs.config.loader.from_dict`); `check_outline` first rejects a document of another format
version (naming the migration command), or one without stages, knob values, variants or rows,
with a message naming the fix.

Format history: version 1 (no ``format_version`` key) had one ``batch_sizes`` list for the
whole pipeline; version 2 gives each stage its own; version 3 replaces the one ``hardware``
entry by device ``pools`` (`envs.model.profile_migrate` converts both).
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
POINT_COLUMNS = ("cap", "concurrency", "tokens_per_s", "power_w", "itl_median_ms",
                 "itl_p99_ms")
PointTuple = tuple[int, float, float, float, float, float]
FORMAT_VERSION = 3
MIGRATE_COMMAND = "python -m envs.model.profile_migrate"


@dataclass(frozen=True)
class SourceFile:
    kind: FileSourceKind
    description: str


@dataclass(frozen=True)
class PoolFile:
    name: str
    device_name: str
    device: Literal["cpu_core", "gpu"]
    devices_per_node: int
    nodes: int
    always_on: int
    node_static_w: float
    device_idle_w: float
    price_per_device_hour: float
    sources: dict[str, str]
    allocated_w: float = 0.0
    boot_s: float = 0.0
    hold_s: float = 0.0
    load_gb_per_s: float = 0.0
    memory_gb: float = 0.0


@dataclass(frozen=True)
class LengthsFile:
    bins: tuple[float, ...]
    counts: tuple[float, ...]


@dataclass(frozen=True)
class LoadTableFile:
    cap: int
    saturated_rps: float
    loads: tuple[float, ...]
    p99_ms: tuple[float, ...]
    mean_ms: tuple[float, ...]
    power_w: tuple[float, ...]


@dataclass(frozen=True)
class ContinuousFile:
    points_source: str
    points: tuple[PointTuple, ...]
    output_lengths: LengthsFile
    tables_source: str
    tables: tuple[LoadTableFile, ...]
    idle_w: float
    max_running: int | None = None


@dataclass(frozen=True)
class VariantFile:
    name: str
    accuracy: float
    accuracy_metric: str
    accuracy_source: str
    base_cores: int
    rows: tuple[RowTuple, ...]
    weights_gb: float = 0.0
    continuous: ContinuousFile | None = None
    pool: str | None = None


@dataclass(frozen=True)
class StageFile:
    name: str
    batch_sizes: tuple[int, ...]
    variants: tuple[VariantFile, ...]
    knob: Literal["batch", "cap"] = "batch"


@dataclass(frozen=True)
class ProfileFile:
    format_version: int
    pipeline: str
    sla_ms: float
    pools: tuple[PoolFile, ...]
    sources: dict[str, SourceFile]
    row_columns: tuple[str, ...]
    stages: tuple[StageFile, ...]
    notes: str = ""


def check_outline(path: Path, data: object) -> object:
    """Name the first thing wrong with a profile document in the user's terms.

    Runs before the strict field-by-field loader, so that an empty file, an old format or
    one with no stages says so, rather than "missing key 'batch_sizes'".

    Args:
        path: The profile file, for messages.
        data: Its parsed YAML.

    Returns:
        ``data`` unchanged.

    Raises:
        ProfileError: Not a mapping; another format version; no stages; a stage without
            knob values or variants, or with knob values out of order; a variant without
            measured rows.
    """
    fix = "energy.profiler writes this format (python -m energy.profiler --pipeline NAME)"
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: not a profile (a YAML mapping with format_version, "
                           f"pipeline, sla_ms, pools, sources, row_columns and stages); "
                           f"{fix}")
    version = data.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise ProfileError(f"{path}: profile format version {version!r}, this package reads "
                           f"version {FORMAT_VERSION} (device pools, batch sizes per stage); "
                           f"convert it with "
                           f"'{MIGRATE_COMMAND} {path}'")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ProfileError(f"{path}: no stages; a profile lists its stages under 'stages:', "
                           f"each with its model variants and their measured rows; {fix}")
    for i, stage in enumerate(stages):
        name, variants = _name_and_list(stage, i, "variants")
        _check_knob_values(path, name, stage)
        if not variants:
            raise ProfileError(f"{path}: stage {name!r} has no variants; list at least one "
                               f"under its 'variants:'")
        for j, variant in enumerate(variants):
            label, rows = _name_and_list(variant, j, "rows")
            if not rows:
                raise ProfileError(f"{path}: variant {label!r} of stage {name!r} has no "
                                   f"measured rows; profile it ({fix})")
    return data


def _check_knob_values(path: Path, name: object, stage: object) -> None:
    """A stage's ``batch_sizes``: a non-empty, strictly increasing list of integers >= 1."""
    values = stage.get("batch_sizes") if isinstance(stage, dict) else None
    if not isinstance(values, list) or not values:
        raise ProfileError(f"{path}: stage {name!r} has no knob values; list the batch sizes "
                           f"(or concurrency caps) policies may choose under its "
                           f"'batch_sizes:', each measured")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
    if not ok or any(a >= b for a, b in zip(values, values[1:], strict=False)):
        raise ProfileError(f"{path}: stage {name!r} batch_sizes {values} must be integers >= 1 "
                           f"in increasing order without repeats; sort them")


def _name_and_list(item: object, index: int, key: str) -> tuple[object, list]:
    """An entry's name (``#index`` without one) and its ``key`` list ([] if not a list)."""
    if not isinstance(item, dict):
        return f"#{index}", []
    value = item.get(key)
    return item.get("name", f"#{index}"), value if isinstance(value, list) else []
