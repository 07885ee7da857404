"""A profile of IPA's video pipeline built from the fragments of IPA's own CPU profiles.

IPA never published its full profiles (Xeon Gold 6126); its notebooks printed fragments
(``ipa/profile_fragments/*.csv`` in the shared reference data). This module turns them
into a profile document for `envs.model.profiles.load_pipeline`, with every row marked:
``ipa`` where mean and p99 latency come straight from a fragment, ``ipa_scaled`` where
they are derived (a missing p99 = mean x the family reference's p99/mean at that batch;
a missing batch = the variant's batch-1 latency x the reference's batch shape; an
unprofiled variant = the reference x (GFLOPs ratio)^k, with k fitted to the family's two
measured batch-1 latencies; other core counts by the family's measured per-doubling
core ratio). Energy is estimated (the fragments hold none). Used by
``benchmarks/ipa_replication.py`` and ``benchmarks/energy_calibration.py``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from envs.model import power
from envs.model.pool_doc import pool_entry
from envs.model.profile_doc import profile_document, variant_entry
from envs.model.profile_migrate import FIXED_POOL_FACTOR

BATCHES = (1, 2, 8)
CORES = (1, 2, 4)  # rows at every core count, for IPA's base-allocation rule
SLA_FACTOR = 5.0  # IPA's video configuration (sla_factor in video-*.yaml)
IDLE_W_PER_CORE = 73.0 / 12  # ipa_ext: idle package ~73 W over the 6126's 12 cores
BUSY_W_PER_CORE = (125.0 - 73.0) / 12  # TDP 125 W above idle, per core
# (name, GFLOPs, base cores). GFLOPs: ultralytics yolov5 README (640 px), torchvision docs.
FAMILIES = {
    "crop": ("yolov5n", [("yolov5n", 4.5, 1), ("yolov5s", 16.5, 1), ("yolov5m", 49.0, 1),
                         ("yolov5l", 109.1, 2), ("yolov5x", 205.7, 4)]),
    "classification": ("resnet18", [("resnet18", 1.81, 2), ("resnet34", 3.66, 2),
                                    ("resnet50", 4.09, 2), ("resnet101", 7.80, 2),
                                    ("resnet152", 11.51, 2)]),
}
Point = tuple[float, float | None]  # mean ms, p99 ms (None: not in the fragment)


def read_fragments(folder: Path) -> dict[tuple[str, int, int], Point]:
    """(variant, batch, cores) -> latency at the highest profiled load (batches fill).

    Args:
        folder: The folder of IPA's profile fragments (``*.csv``); unparsable rows are
            skipped.

    Returns:
        ``{(variant, batch, cores): (mean ms, p99 ms or None)}``.
    """
    best: dict[tuple[str, int, int], tuple[float, Point]] = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                try:
                    key = (row["model_variant"], int(row["max_batch_size"]),
                           int(row["cpu_request"]))
                    load, mean = float(row["load"]), float(row["model_latencies_avg"]) * 1e3
                except (KeyError, ValueError, TypeError):
                    continue
                p99_text = row.get("model_latencies_p99") or ""
                p99 = float(p99_text) * 1e3 if p99_text else None
                if math.isfinite(mean) and (key not in best or load > best[key][0]):
                    best[key] = (load, (mean, p99))
    return {k: v for k, (_, v) in best.items()}


def core_ratio(points: dict, ref: str) -> float:
    """Measured latency ratio per doubling of cores of the family's reference (mean over
    the batches profiled at c and 2c), capped at 1 (assumed: more cores are never
    slower; the fragments' resnet rows come from different loads).

    Args:
        points: The `read_fragments` latencies.
        ref: The family's reference variant.

    Returns:
        The ratio (1.0 when no pair of core counts is profiled).
    """
    pairs = [points[(ref, b, 2 * c)][0] / points[(ref, b, c)][0]
             for (name, b, c) in points if name == ref and (ref, b, 2 * c) in points]
    return min(1.0, sum(pairs) / len(pairs)) if pairs else 1.0


def family_rows(points: dict, ref: str, members: list) -> dict[str, list[list]]:
    """Rows of every member at CORES and BATCHES (see the module docstring): computed at
    the member's fragment cores, scaled to other core counts by `core_ratio`.

    Args:
        points: The `read_fragments` latencies.
        ref: The family's reference variant.
        members: ``(name, GFLOPs, base cores)`` per variant, reference first (`FAMILIES`).

    Returns:
        Variant name -> its profile rows (batch, cores, mean ms, p99 ms, energy per batch
        J, latency source, energy source).
    """
    ratio = core_ratio(points, ref)

    def ref_at(batch: int, cores: int) -> Point:
        hits = [points.get((ref, batch, c)) for c in (cores, 2, 1, 4)]
        return next(h for h in hits if h and h[1] is not None)

    ref_cores = members[0][2]
    measured_b1 = [(gf, points[(n, 1, c)][0]) for n, gf, c in members
                   if c == ref_cores and (n, 1, c) in points]
    (g0, l0), (g1, l1) = measured_b1[0], measured_b1[-1]
    k = math.log(l1 / l0) / math.log(g1 / g0)
    ref_gflops = members[0][1]
    out = {}
    for name, gflops, cores in members:
        anchor = points.get((name, 1, cores), (None, None))[0]
        if anchor is None:
            anchor = ref_at(1, cores)[0] * (gflops / ref_gflops) ** k
        rows = []
        for c_out in CORES:
            scale = ratio ** math.log2(c_out / cores)
            for b in BATCHES:
                ref_mean, ref_p99 = ref_at(b, cores)
                mean, p99 = points.get((name, b, c_out), (None, None))
                cited = mean is not None and p99 is not None
                if not cited:
                    mean, p99 = points.get((name, b, cores), (None, None))
                    mean = (mean if mean is not None else
                            anchor * ref_mean / ref_at(1, cores)[0]) * scale
                    p99 = p99 * scale if p99 is not None else mean * ref_p99 / ref_mean
                energy = power.busy_batch_energy_j(BUSY_W_PER_CORE, c_out, mean)
                rows.append([b, c_out, round(mean, 3), round(max(p99, mean), 3),
                             round(energy, 5), "ipa" if cited else "ipa_scaled", "tdp"])
        out[name] = rows
    return out


def profile_doc(points: dict, accuracies: dict) -> tuple[dict, int, int]:
    """The profile document, and how many rows are cited / scaled.

    Args:
        points: The `read_fragments` latencies.
        accuracies: Stage -> variant -> accuracy (IPA's ``accuracies.yaml``).

    Returns:
        The document for `envs.model.profiles.load_pipeline`, the number of ``ipa`` rows and the
        number of ``ipa_scaled`` rows.
    """
    stages, b1_p99 = [], []
    for stage, (ref, members) in FAMILIES.items():
        rows = family_rows(points, ref, members)
        metric = "COCO mAP@0.5" if stage == "crop" else "top-1 (%)"
        variants = [variant_entry(n, float(accuracies[stage][n]), rows[n], metric=metric,
                                  source="IPA accuracies.yaml", base_cores=c)
                    for n, _, c in members]
        stages.append({"name": stage, "variants": variants})
        b1_p99.append(np.mean([rows[n][0][3] for n, _, _ in members]))
    all_rows = [r for s in stages for v in s["variants"] for r in v["rows"]]
    cited = sum(r[5] == "ipa" for r in all_rows)
    doc = profile_document(
        "ipa_video_fragments",
        sla_ms=round(float(SLA_FACTOR * sum(b1_p99)), 1),
        batch_sizes=BATCHES,
        pools=[pool_entry("cpu", "Intel Xeon Gold 6126 (IPA's)", devices_per_node=12,
                          nodes=FIXED_POOL_FACTOR, always_on=1,
                          allocated_w=round(IDLE_W_PER_CORE, 3),
                          sources={"allocated_w": "idle"})],
        sources={
            "static": {"kind": "assumed", "description": "idle package power is all "
                       "attributed to allocated cores in this benchmark"},
            "ipa": {"kind": "cited", "description": "IPA CPU profile fragments (notebooks)"},
            "ipa_scaled": {"kind": "estimated", "description":
                           "derived from IPA's fragments by reference ratios / GFLOPs^k and "
                           "the family's measured per-doubling core ratio"},
            "tdp": {"kind": "estimated", "description":
                    f"{BUSY_W_PER_CORE:.2f} W per busy core (TDP 125 W above idle)"},
            "idle": {"kind": "estimated", "description": "ipa_ext idle package 73 W / 12 cores"},
        },
        stages=stages,
    )
    return doc, cited, len(all_rows) - cited
