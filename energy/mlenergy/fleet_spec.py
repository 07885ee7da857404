"""The spec of a fleet profile (``python -m energy.mlenergy.fleet SPEC.yaml``): device pools,
a per-token latency target, and the (model, pool, GPUs per replica) variants of each LLM stage.

Layout (every figure of a pool names its source, as in a profile's ``pools``)::

    pipeline: llm_chat_a100_h100              # the profile is <pipeline>_<target>
    dataset: v2                               # v2 (A100-40GB, H100) or v3 (H100, B200)
    release: ML.ENERGY leaderboard v2 (...)   # written into every derived source
    targets:                                  # one profile per target (--target NAME)
      tight: {tpot_ms: 100, sla_ms: 62100}    # per-token (mean TPOT) and end-to-end p99
      loose: {tpot_ms: 200, sla_ms: 122200}
    targets_source: slo                       # a source id below
    notes: why these targets, what the rows mean, caveats
    sources: {slo: {kind: cited, description: ...}, ...}
    pools:
      - {name: a100, device_name: ..., device: gpu, devices_per_node: 8, nodes: 6,
         always_on: 0, node_static_w: 1664, device_idle_w: 63, price_per_device_hour: 1.99,
         load_gb_per_s: 2.0, memory_gb: 40, sources: {node_static_w: host, ...}}
    stages:
      - name: chat
        caps: [64, 128, 256]                  # each measured for every variant
        variants:
          - {model: meta-llama/Meta-Llama-3.1-8B-Instruct, pool: a100, gpus: 1}

The measured data, the output-length trace and the quality file are given by path on the
command line (the package runs without them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from envs.config.errors import ConfigError
from envs.config.loader import from_dict, read_yaml_file
from envs.model.profile_format import PoolFile, SourceFile


@dataclass(frozen=True)
class FleetVariant:
    """One model on one pool.

    Attributes:
        model: The model id as the measured data names it.
        pool: The pool's name.
        gpus: GPUs per replica (tensor parallel).
    """

    model: str
    pool: str
    gpus: int = 1


@dataclass(frozen=True)
class FleetStage:
    """A stage: an LLM served by continuous batching (``knob: cap``) or a statically
    batched image model (``knob: batch``, v3 only).

    Attributes:
        name: Stage name.
        caps: The knob values policies may choose: concurrency caps or batch sizes (each
            measured for every variant).
        variants: The (model, pool) variants.
        knob: ``cap`` or ``batch``.
    """

    name: str
    caps: tuple[int, ...]
    variants: tuple[FleetVariant, ...]
    knob: Literal["cap", "batch"] = "cap"


@dataclass(frozen=True)
class FleetTarget:
    """A latency target pair.

    Attributes:
        tpot_ms: Per-token target: each replica admits at most the requests that keep its
            inter-token latency within it.
        sla_ms: End-to-end p99 target.
    """

    tpot_ms: float
    sla_ms: float


@dataclass(frozen=True)
class FleetSpec:
    """A fleet profile's spec (module docstring).

    Attributes:
        pipeline: Pipeline name (the profile is ``<pipeline>_<target>``).
        release: Dataset version, written into every derived source.
        dataset: ``v2`` or ``v3`` (`energy.mlenergy.fleet_data`).
        targets: Target name -> its latency targets.
        targets_source: Source id of the targets.
        notes: Why these targets, what the rows mean, caveats.
        sources: Sources of the pools' figures and the targets.
        pools: The device pools.
        stages: The stages, in request order.
    """

    pipeline: str
    release: str
    targets: dict[str, FleetTarget]
    targets_source: str
    notes: str
    sources: dict[str, SourceFile]
    pools: tuple[PoolFile, ...]
    stages: tuple[FleetStage, ...] = field(default_factory=tuple)
    dataset: Literal["v2", "v3"] = "v2"


def read_fleet_spec(path: Path) -> FleetSpec:
    """Read and check a fleet spec.

    Args:
        path: The YAML file.

    Returns:
        The spec.

    Raises:
        ConfigError: A missing file, unknown or missing keys, a pool or source a variant
            names that does not exist, targets that are not positive, no stages.
    """
    spec = from_dict(FleetSpec, read_yaml_file(path), str(path))
    if not spec.stages:
        raise ConfigError(f"{path}: no stages; list the LLM stages under 'stages:'")
    if not spec.targets or not all(t.sla_ms > 0 and t.tpot_ms > 0
                                   for t in spec.targets.values()):
        raise ConfigError(f"{path}: give at least one target, each with tpot_ms and sla_ms > 0")
    if spec.targets_source not in spec.sources:
        raise ConfigError(f"{path}: targets_source {spec.targets_source!r} is not in sources "
                          f"{sorted(spec.sources)}")
    pools = {p.name for p in spec.pools}
    for stage in spec.stages:
        if not stage.caps or list(stage.caps) != sorted(set(stage.caps)) or min(stage.caps) < 1:
            raise ConfigError(f"{path}: stage {stage.name!r} caps {list(stage.caps)} must be "
                              "integers >= 1, increasing, without repeats")
        for v in stage.variants:
            if v.pool not in pools:
                raise ConfigError(f"{path}: stage {stage.name!r}, model {v.model!r}: pool "
                                  f"{v.pool!r} is not one of the pools {sorted(pools)}")
            if v.gpus < 1:
                raise ConfigError(f"{path}: stage {stage.name!r}, model {v.model!r}: gpus "
                                  "must be >= 1")
    return spec


def pool_document(pool: PoolFile) -> dict[str, Any]:
    """A spec's pool as a profile's ``pools`` entry (the same keys).

    Args:
        pool: The pool as read.

    Returns:
        The mapping.
    """
    from envs.model.pool_doc import pool_entry

    return pool_entry(
        pool.name, pool.device_name, device=pool.device,
        devices_per_node=pool.devices_per_node, nodes=pool.nodes, always_on=pool.always_on,
        node_static_w=pool.node_static_w, device_idle_w=pool.device_idle_w,
        allocated_w=pool.allocated_w, price_per_device_hour=pool.price_per_device_hour,
        boot_s=pool.boot_s, hold_s=pool.hold_s, load_gb_per_s=pool.load_gb_per_s,
        memory_gb=pool.memory_gb, sources=dict(pool.sources))
