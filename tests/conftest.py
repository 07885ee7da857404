"""Shared fixtures: a small synthetic pipeline profile written to a temp file."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import (
    profile_document,
    synthetic_rows,
    variant_entry,
    write_profile,
)
from envs.model.profiles import load_pipeline
from envs.model.spec import Pipeline

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tiny_profile_doc(sla_ms: float = 1000.0) -> dict:
    """Two stages, two or three variants each, batch 1/2/4 at 1 and 2 cores.

    Latency mean grows sub-linearly with batch (batching pays), p99 is 20 % above the
    mean, dynamic energy is 3 W per busy core.

    Args:
        sla_ms: End-to-end SLA of the document.

    Returns:
        The profile document.
    """

    def variant(name: str, acc: float, base_ms: float) -> dict:
        rows = synthetic_rows(base_ms, batches=(1, 2, 4), cores=(1, 2), batch_shape=(0.4, 0.6),
                              core_shape=(0.6, 0.4), p99_factor=1.2)
        return variant_entry(name, acc, rows, metric="top-1 (%)", source="made up for tests",
                             base_cores=1)

    return profile_document(
        "tiny", sla_ms=sla_ms, batch_sizes=[1, 2, 4],
        pools=[pool_entry("cpu", "test CPU", devices_per_node=4, nodes=8, always_on=1,
                          allocated_w=1.0, sources={"allocated_w": "idle"})],
        sources={
            "static": {"kind": "assumed", "description": "no node static power, for tests"},
            "lat": {"kind": "cited", "description": "synthetic numbers for tests"},
            "en": {"kind": "estimated", "description": "3 W per busy core, for tests"},
            "idle": {"kind": "estimated", "description": "1 W per core, for tests"},
        },
        stages=[
            {"name": "first", "variants": [variant("small", 60.0, 20.0),
                                           variant("medium", 70.0, 40.0),
                                           variant("large", 80.0, 80.0)]},
            {"name": "second", "variants": [variant("fast", 50.0, 10.0),
                                            variant("slow", 75.0, 50.0)]},
        ],
    )


@pytest.fixture
def tiny_profile_path(tmp_path: Path) -> Path:
    """The tiny profile (`tiny_profile_doc`) written into the test's temp folder.

    Args:
        tmp_path: pytest's temp folder.

    Returns:
        The file's path.
    """
    return write_profile(tiny_profile_doc(), tmp_path / "tiny.yaml")


@pytest.fixture
def tiny_pipeline(tiny_profile_path: Path) -> Pipeline:
    """The tiny profile, loaded.

    Args:
        tiny_profile_path: The file.

    Returns:
        The pipeline.
    """
    return load_pipeline(tiny_profile_path)


def profile_tiny_catalog(path: Path) -> Path:
    """Profile the tiny catalog pipeline on this machine into ``path`` (a fraction of a
    second, TDP meter) for the tests that start real stage servers.

    Args:
        path: Where the profile goes.

    Returns:
        ``path``.
    """
    import os

    import torch

    from energy.meters import make_meter
    from energy.profiler import profile_pipeline
    from models.catalog import catalog_pipeline

    cores = os.cpu_count() or 1
    meter = make_meter("tdp", tdp_w=4.0 * cores, idle_w=1.0 * cores, cores=cores)
    threads = torch.get_num_threads()
    try:
        profile_pipeline(catalog_pipeline("tiny"), path, meter, "tdp", (1,), idle_s=0.1,
                         budget_s=0.05, progress=False)
    finally:
        torch.set_num_threads(threads)
    return path
