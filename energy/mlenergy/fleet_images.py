"""The statically batched stages of a fleet profile (diffusion models), from ML.ENERGY v3's
text-to-image measurements: one variant per (model, pool), its rows the measured batches on
that pool's GPU (`energy.mlenergy.points`: latency = the batch's measured latency, p99 = the
mean, which the files do not spread; dynamic energy = measured GPU energy minus the pool's
idle power over the batch latency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from energy.mlenergy.files import read_model_file
from energy.mlenergy.fleet_data import dataset_gpu
from energy.mlenergy.fleet_spec import FleetSpec, FleetStage
from energy.mlenergy.points import dynamic_j, select_points
from energy.mlenergy.profile import QualityEntry, slug
from envs.config.errors import ProfileError
from envs.model.profile_doc import stage_entry, variant_entry

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
        if v.model not in quality:
            raise ProfileError(f"no quality entry for {v.model!r}; add its published score "
                               "with the source to the --quality file")
        f = read_model_file(data / "models" / f"{v.model.replace('/', '__')}__{IMAGE_TASK}.json")
        points = select_points(f, gpu, v.gpus, tuple(stage.caps))
        rows = []
        for p in points:
            dyn = dynamic_j(p.total_energy_j, pool.device_idle_w, p.num_gpus, p.latency_mean_ms)
            if dyn < 0:
                raise ProfileError(f"{f.path}: batch {p.batch} on {p.num_gpus} x {gpu}: the "
                                   f"pool's idle power {pool.device_idle_w:g} W per GPU exceeds "
                                   f"the measured mean power {p.avg_power_w:.0f} W")
            sid = f"mlenergy_{spec.dataset}_{slug(v.model)}_{v.pool}_b{p.batch}"
            sources[sid] = {"kind": "measured", "description": (
                f"{spec.release}, file {f.path.name}, {p.num_gpus} x {gpu}, {p.detail}; dynamic "
                f"= measured GPU energy x batch ({p.total_energy_j:.2f} J) minus the pool's idle "
                f"{pool.device_idle_w:g} W x {p.num_gpus} GPU(s) x latency_mean")}
            rows.append([p.batch, p.num_gpus, round(p.latency_mean_ms, 4),
                         round(p.latency_p99_ms, 4), round(dyn, 6), sid, sid])
        q = quality[v.model]
        entry = variant_entry(f"{v.model.split('/')[-1]}@{v.pool}", q.accuracy, rows,
                              metric=q.accuracy_metric, source=q.accuracy_source,
                              base_cores=v.gpus, weights_gb=round(f.weights_gb, 3))
        entry["pool"] = v.pool
        variants.append(entry)
    variants.sort(key=lambda entry: entry["accuracy"])
    return stage_entry(stage.name, variants, stage.caps, "batch")
