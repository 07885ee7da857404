"""One replica of a stage on this machine: its process, configuration and state, as the
launcher, the driver and the backend's supervisor see it; and the check that a pipeline's
stages and variants are in the catalog the replicas build their models from."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from envs.config.errors import ConfigError
from envs.model.spec import Pipeline


class ReplicaConfig(NamedTuple):
    """What a replica is asked to serve (what ``POST /config`` sends)."""

    variant: str
    batch: int
    cores: int


@dataclass(eq=False)
class Replica:
    """One replica process and what the backend knows about it.

    Times are ``time.monotonic()`` seconds. ``host``/``port``/``inflight``/``routable``
    make it a target for `envs.live.driver.PipelineDriver`.
    """

    stage: int
    stage_name: str
    number: int
    variant: str
    batch: int
    cores: int
    popen: subprocess.Popen[bytes]
    port_file: Path
    log_path: Path
    started_at: float
    host: str = "127.0.0.1"
    port: int = 0
    ready_at: float | None = None
    stopped_at: float | None = None
    exit_code: int | None = None
    final_cpu_s: float | None = None
    retiring: bool = False
    retire_since: float = 0.0
    healthy: bool = True
    inflight: int = 0
    config_sent: ReplicaConfig | None = None
    scraped: dict[str, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The replica's process id (also its process group's)."""
        return self.popen.pid

    @property
    def name(self) -> str:
        """``stage/number``, as events and logs name it."""
        return f"{self.stage_name}/{self.number}"

    @property
    def alive(self) -> bool:
        """Whether the replica has not been stopped."""
        return self.stopped_at is None

    @property
    def routable(self) -> bool:
        """Whether the driver may send it requests: alive, ready, healthy, not retiring."""
        return self.alive and self.ready_at is not None and self.healthy and not self.retiring


def check_catalog(pipeline: Pipeline, catalog: str) -> None:
    """Check that every stage and variant of ``pipeline`` exists in ``catalog``.

    Args:
        pipeline: The profiled pipeline the replicas will serve.
        catalog: The `models.catalog` pipeline the servers build their models from.

    Raises:
        CatalogError: If ``catalog`` is not a catalog pipeline (its message lists them).
        ConfigError: If a stage or a variant of ``pipeline`` is not in the catalog.
    """
    from models.catalog import catalog_pipeline

    spec = catalog_pipeline(catalog)
    stages = {s.name: {v.name for v in s.variants} for s in spec.stages}
    for stage in pipeline.stages:
        if stage.name not in stages:
            raise ConfigError(f"pipeline stage {stage.name!r} is not in catalog {catalog!r} "
                              f"(stages {sorted(stages)}); pass catalog= the pipeline was "
                              "profiled from")
        missing = [v.name for v in stage.variants if v.name not in stages[stage.name]]
        if missing:
            raise ConfigError(f"variants {missing} of stage {stage.name!r} are not in catalog "
                              f"{catalog!r}; it has {sorted(stages[stage.name])}")
