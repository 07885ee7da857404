"""Load and validate profile files (``profiles/<pipeline>.yaml``) into a `Pipeline`.

The file format is `envs.model.profile_format`'s. Unmeasured batch sizes between measured ones
are filled in here, once (`envs.model.densify`), by linear interpolation, and marked with the
``interpolated`` source; batch sizes below the smallest measured one (an LLM's
concurrency caps start at 8) take that batch's latency and energy, marked
``below_min_batch``. A variant's optional ``continuous:`` block (an LLM served by continuous
batching) is checked and stored by `envs.model.profile_continuous`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from envs.config.errors import ConfigError, ProfileError
from envs.config.loader import from_dict
from envs.config.suggest import did_you_mean
from envs.config.yaml_io import read_yaml_file
from envs.model import perf
from envs.model.densify import RESERVED_SOURCES, densify_rows
from envs.model.fleet import POOL_QUANTITIES, DevicePool, Fleet
from envs.model.profile_continuous import continuous_serving
from envs.model.profile_data import Profile, ProfileRow, Source
from envs.model.profile_format import (
    ROW_COLUMNS,
    PoolFile,
    ProfileFile,
    StageFile,
    VariantFile,
    check_outline,
)
from envs.model.spec import ModelVariant, Pipeline, Stage

PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"


def available_pipelines() -> list[str]:
    """Names of the profiles shipped in ``profiles/``."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """A shipped pipeline's name or a path to a profile file -> the file's path.

    Args:
        name_or_path: ``video`` (a file in ``profiles/``) or a ``.yaml``/``.yml`` path.

    Returns:
        The file's path.

    Raises:
        ProfileError: The file does not exist, or the name is not a shipped pipeline (with
            a "did you mean" hint).
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ProfileError(f"profile file {candidate} does not exist; check the path")
        return candidate
    path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = available_pipelines()
        raise ProfileError(
            f"unknown pipeline {str(name_or_path)!r}{did_you_mean(str(name_or_path), names)}; "
            f"shipped pipelines: {names}, or give a path to a profile .yaml"
        )
    return path


def load_pipeline(
    name_or_path: str | Path, sla_ms: float | None = None,
    batch_sizes: tuple[int, ...] | None = None, fleet: str | None = None,
    idle_power_scale: float = 1.0, node_boot_s: float | None = None,
    node_hold_s: float | None = None,
) -> Pipeline:
    """Load, validate and densify a profile into a `Pipeline`.

    Args:
        name_or_path: A shipped pipeline name (``video``) or a profile file path.
        sla_ms: Override of the file's SLA.
        batch_sizes: Override of the knob values policies may choose, for every stage
            (None: each stage's own list from the file).
        fleet: Override of every pool's powered nodes: ``elastic`` (none always on) or
            ``fixed`` (all always on).
        idle_power_scale: Factor on the node static, device idle and allocated power (the
            sensitivity runs of an assumed idle power use 0.5 and 2).
        node_boot_s: Override of every pool's boot time (None: the file's).
        node_hold_s: Override of every pool's hold time (None: the file's).

    Returns:
        The pipeline, with unmeasured batch sizes filled in and marked (`envs.model.densify`).

    Raises:
        ProfileError: Malformed file, missing rows, dangling sources.
        ConfigError: An SLA below the fastest possible end-to-end latency.
    """
    path = resolve_profile_path(name_or_path)
    try:
        spec = from_dict(ProfileFile, check_outline(path, read_yaml_file(path)))
    except ConfigError as err:
        raise ProfileError(f"{path}: {err}") from None
    if spec.row_columns != ROW_COLUMNS:
        raise ProfileError(f"{path}: row_columns must be {list(ROW_COLUMNS)}")
    sources = {k: Source(k, v.kind, v.description) for k, v in spec.sources.items()}
    for reserved in RESERVED_SOURCES:
        if reserved.id in sources:
            raise ProfileError(f"{path}: source id {reserved.id!r} is reserved for the loader")
        sources[reserved.id] = reserved
    pools = _fleet(path, spec.pools, sources, fleet, idle_power_scale)
    if node_boot_s is not None or node_hold_s is not None:
        pools = Fleet(tuple(dataclasses.replace(
            p, boot_s=p.boot_s if node_boot_s is None else node_boot_s,
            hold_s=p.hold_s if node_hold_s is None else node_hold_s) for p in pools.pools))
    if batch_sizes is not None and not batch_sizes:
        raise ConfigError("batch_sizes override is empty; list the batch sizes policies may "
                          "choose (each must be profiled), or give none to use the profile's")
    override = tuple(sorted(batch_sizes)) if batch_sizes else None
    stages = tuple(_stage(path, s, sources, override or s.batch_sizes, pools)
                   for s in spec.stages)
    pipeline = Pipeline(
        name=spec.pipeline, stages=stages, sla_ms=sla_ms if sla_ms is not None else spec.sla_ms,
        fleet=pools,
        sources=sources,
    )
    check_sla_feasible(pipeline)
    return pipeline


def _fleet(path: Path, pools: tuple[PoolFile, ...], sources: dict[str, Source],
           mode: str | None, idle_power_scale: float) -> Fleet:
    if mode not in (None, "elastic", "fixed"):
        raise ConfigError(f"fleet must be 'elastic' or 'fixed', got {mode!r}")
    if not idle_power_scale > 0:
        raise ConfigError(f"idle_power_scale must be > 0, got {idle_power_scale!r}")
    if not pools:
        raise ProfileError(f"{path}: no device pools; list at least one under 'pools:'")
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise ProfileError(f"{path}: duplicate pool names {names}; give each pool its own name")
    return Fleet(tuple(_pool(path, p, sources, mode, idle_power_scale) for p in pools))


def _pool(path: Path, spec: PoolFile, sources: dict[str, Source], mode: str | None,
          idle_power_scale: float) -> DevicePool:
    where = f"{path}: pool {spec.name!r}"
    if spec.devices_per_node < 1:
        raise ProfileError(f"{where}: devices_per_node must be >= 1, got {spec.devices_per_node}")
    if spec.nodes < 1:
        raise ProfileError(f"{where}: nodes must be >= 1 (the pool's size), got {spec.nodes}; "
                           "remove the pool or give it nodes")
    if not 0 <= spec.always_on <= spec.nodes:
        raise ProfileError(f"{where}: always_on must be between 0 and nodes ({spec.nodes}), "
                           f"got {spec.always_on}")
    for q in POOL_QUANTITIES + ("memory_gb",):
        value = getattr(spec, q)
        if not (math.isfinite(value) and value >= 0):
            raise ProfileError(f"{where}: {q} must be a finite number >= 0, got {value!r}")
    for q, ref in spec.sources.items():
        if q not in POOL_QUANTITIES:
            raise ProfileError(f"{where}: sources names {q!r}, which is not one of its "
                               f"figures {list(POOL_QUANTITIES)}{did_you_mean(q, POOL_QUANTITIES)}")
        if ref not in sources:
            raise ProfileError(f"{where}: the source {ref!r} of {q} is not in sources "
                               f"{sorted(sources)}{did_you_mean(ref, sources)}")
    for q in POOL_QUANTITIES:
        unit_price = q == "price_per_device_hour" and getattr(spec, q) == 1.0
        if getattr(spec, q) > 0 and q not in spec.sources and not unit_price:
            raise ProfileError(f"{where}: {q} = {getattr(spec, q)} has no provenance; name its "
                               f"source under the pool's sources ({q}: <source id>)")
    always_on = {None: spec.always_on, "elastic": 0, "fixed": spec.nodes}[mode]
    return DevicePool(
        name=spec.name, device_name=spec.device_name, device=spec.device,
        devices_per_node=spec.devices_per_node, nodes=spec.nodes, always_on=always_on,
        node_static_w=spec.node_static_w * idle_power_scale,
        device_idle_w=spec.device_idle_w * idle_power_scale,
        allocated_w=spec.allocated_w * idle_power_scale,
        price_per_device_hour=spec.price_per_device_hour, boot_s=spec.boot_s,
        hold_s=spec.hold_s, load_gb_per_s=spec.load_gb_per_s, memory_gb=spec.memory_gb,
        sources=dict(spec.sources),
    )


def check_sla_feasible(pipeline: Pipeline) -> None:
    """Reject an SLA below the fastest possible end-to-end latency.

    Args:
        pipeline: The loaded pipeline.

    Raises:
        ConfigError: The SLA is not positive or below `envs.model.perf.fastest_latency_ms`.
    """
    fastest = perf.fastest_latency_ms(pipeline)
    if pipeline.sla_ms <= 0 or pipeline.sla_ms < fastest:
        raise ConfigError(
            f"SLA {pipeline.sla_ms:.1f} ms of pipeline {pipeline.name!r} is below the fastest "
            f"possible end-to-end p99 latency {fastest:.1f} ms (smallest batch, fastest "
            "variants); "
            f"raise sla_ms to at least {fastest:.0f}"
        )


def _stage(
    path: Path, spec: StageFile, sources: dict[str, Source], batch_sizes: tuple[int, ...],
    fleet: Fleet,
) -> Stage:
    names = [v.name for v in spec.variants]
    if len(set(names)) != len(names):
        raise ProfileError(f"{path}: stage {spec.name!r} has duplicate variant names {names}")
    variants = tuple(_variant(path, spec, v, sources, batch_sizes, fleet)
                     for v in spec.variants)
    return Stage(spec.name, tuple(sorted(variants, key=lambda v: v.accuracy)),
                 tuple(batch_sizes), spec.knob)


def _variant(
    path: Path, stage: StageFile, spec: VariantFile, sources: dict[str, Source],
    batch_sizes: tuple[int, ...], fleet: Fleet,
) -> ModelVariant:
    where = f"{path}: {stage.name}/{spec.name}"
    pool_index = _variant_pool(where, spec, fleet)
    rows = [ProfileRow(*r) for r in spec.rows]
    seen: set[tuple[int, int]] = set()
    for row in rows:
        if (row.batch, row.cores) in seen:
            raise ProfileError(f"{where}: duplicate row for batch {row.batch}, cores {row.cores}")
        seen.add((row.batch, row.cores))
        for ref in (row.latency_source, row.energy_source):
            if ref not in sources:
                raise ProfileError(f"{where}: row source {ref!r} is not in sources "
                                   f"{sorted(sources)}{did_you_mean(ref, sources)}")
        if row.batch < 1 or row.cores < 1:
            raise ProfileError(f"{where}: batch and cores must be >= 1 in {row}")
        if not 0 < row.latency_mean_ms <= row.latency_p99_ms:
            raise ProfileError(f"{where}: need 0 < latency_mean_ms <= latency_p99_ms in {row}")
        if row.energy_per_batch_j < 0:
            raise ProfileError(f"{where}: negative energy in {row}")
    if spec.weights_gb < 0:
        raise ProfileError(f"{where}: weights_gb must be >= 0 GB, got {spec.weights_gb}")
    if spec.base_cores not in {r.cores for r in rows}:
        raise ProfileError(f"{where}: no rows at its base allocation of {spec.base_cores} cores")
    for cores in sorted({r.cores for r in rows}):
        measured = {r.batch for r in rows if r.cores == cores}
        if min(batch_sizes) not in measured:
            raise ProfileError(f"{where}: the smallest allowed batch size "
                               f"{min(batch_sizes)} at {cores} cores is not profiled")
        missing = sorted(set(batch_sizes) - measured)
        if missing:
            raise ProfileError(
                f"{where}: batch sizes {missing} at {cores} cores are allowed by the "
                f"configuration but not profiled; profile them (python -m energy.profiler) "
                f"or remove them from the stage's batch_sizes"
            )
    continuous = None if spec.continuous is None else continuous_serving(
        where, stage.knob, batch_sizes, spec.continuous, sources)
    return ModelVariant(
        name=spec.name, accuracy=spec.accuracy, accuracy_metric=spec.accuracy_metric,
        accuracy_source=spec.accuracy_source, base_cores=spec.base_cores,
        profile=Profile(tuple(densify_rows(rows)), sources), weights_gb=spec.weights_gb,
        continuous=continuous, pool=pool_index,
    )


def _variant_pool(where: str, spec: VariantFile, fleet: Fleet) -> int:
    """The index of the pool a variant runs on, after checking that its weights fit."""
    names = [p.name for p in fleet.pools]
    if spec.pool is None:
        if len(names) > 1:
            raise ProfileError(f"{where}: the fleet has pools {names}; say which one the "
                               "variant runs on (pool: NAME)")
        index = 0
    elif spec.pool in names:
        index = names.index(spec.pool)
    else:
        raise ProfileError(f"{where}: pool {spec.pool!r} is not a device pool of the profile"
                           f"{did_you_mean(spec.pool, names)}; pools: {names}")
    pool = fleet.pools[index]
    if pool.memory_gb > 0 and spec.weights_gb > pool.memory_gb * spec.base_cores:
        raise ProfileError(
            f"{where}: its weights ({spec.weights_gb:g} GB) do not fit {spec.base_cores} x "
            f"{pool.memory_gb:g} GB of pool {pool.name!r}; give it more devices per replica "
            "(base_cores) or run it on a pool with more memory")
    return index


