"""The statically batched stages of a fleet profile (diffusion models), from ML.ENERGY v3's
text-to-image measurements: one variant per (model, pool), its rows the measured batches on
that pool's GPU, as the single-GPU importer writes them
(`energy.mlenergy.profile.measured_variant`: latency = the batch's measured latency, p99 =
the mean, which the files do not spread; dynamic energy = measured GPU energy minus the
pool's idle power over the batch latency), each pool's rows under their own source ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from energy.mlenergy.files import read_model_file
from energy.mlenergy.fleet_data import dataset_gpu
from energy.mlenergy.fleet_spec import FleetSpec, FleetStage
from energy.mlenergy.points import select_points
from energy.mlenergy.profile import QualityEntry, measured_variant, quality_entry, slug
from envs.config.errors import ProfileError
from envs.model.profile_doc import stage_entry

IMAGE_TASK = "text-to-image"


def image_stage(spec: FleetSpec, stage: FleetStage, data: Path,
                quality: dict[str, QualityEntry], sources: dict[str, Any]) -> dict[str, Any]:
    """A statically batched stage, adding one source per row to ``sources``.

    Args:
        spec: The fleet spec (``dataset: v3``).
        stage: The stage (``knob: batch``; its ``caps`` are the batch sizes).
        data: ML.ENERGY v3's root (holding ``models/``).
        quality: Model id -> published quality.
        sources: The profile's sources, extended in place.

    Returns:
        The stage mapping.

    Raises:
        ProfileError: Not a v3 fleet, a missing file, batch or quality entry, or a row whose
            dynamic energy would be negative at the pool's idle power.
    """
    if spec.dataset != "v3":
        raise ProfileError(f"stage {stage.name!r}: statically batched (image) stages read "
                           "ML.ENERGY v3's text-to-image files; set dataset: v3")
    pools = {p.name: p for p in spec.pools}
    variants = []
    for v in stage.variants:
        pool = pools[v.pool]
        gpu = dataset_gpu(spec.dataset, pool.device_name)
        q = quality_entry(quality, v.model)
        f = read_model_file(data / "models" / f"{v.model.replace('/', '__')}__{IMAGE_TASK}.json")
        entry = measured_variant(
            f, select_points(f, gpu, v.gpus, tuple(stage.caps)), q, gpu, pool.device_idle_w,
            spec.release, sources,
            source_prefix=f"mlenergy_{spec.dataset}_{slug(v.model)}_{v.pool}",
            idle_fix=f"lower pool {pool.name!r}'s device_idle_w")
        entry.update(name=f"{v.model.split('/')[-1]}@{v.pool}", pool=v.pool)
        variants.append(entry)
    variants.sort(key=lambda entry: entry["accuracy"])
    return stage_entry(stage.name, variants, stage.caps, "batch")
