"""IPA's own rules (github reconfigurable-ml-pipeline/ipa) as named options, and the
``replication: ipa`` preset that turns them all on.

Each rule, where IPA defines it, and the package default it replaces:

* ``sla_rule="ipa"`` (``optimizer/models.py``, ``Task.sla`` and ``Pipeline.sla``): a
  stage's SLA is the mean over its variants of ``sla_factor`` x the variant's batch-1
  latency (at its last listed allocation, here the largest profiled core count) times a
  hard-coded 5; the pipeline's SLA is the sum over stages. Default ``profile``: the
  profile file's ``sla_ms``.
* ``base_allocation="ipa"`` (``Task.base_allocations``): per variant and core count, count
  the batch sizes whose throughput reaches ``threshold_rps`` and whose latency is within
  the stage SLA; walk the variants from least to most accurate with one allocation index
  that only moves up (to the next core count when it sustains more batches, or when the
  current one sustains none). Default ``profile``: the profile's ``base_cores``.
* ``latency_margin_pct`` / ``throughput_margin_pct``
  (``experiments/utils/simulation_operations.py``, ``load_profile``): the optimiser's
  latency x (100 + margin) / 100 and throughput likewise, for cross-machine use. They
  change what the policy plans with, not the simulated machine. Default 0.
* ``on_infeasible="keep"`` (``optimizer/adapter.py``: "optimizer couldn't find any optimal
  solution the pipeline will stay the same"). Default ``fallback``: the most
  throughput-heavy decision (`ipa_baseline.fallback.fallback_decision`).
* ``fa2_high="ipa"`` (``data/configs/final/video-3.yaml``: yolov5s + resnet101). Default
  ``most_accurate``: the most accurate variant per stage.
* ``rim_replicas="ipa"`` (``data/configs/final/video-5.yaml``: 3 replicas per stage).
  Default ``peak``: sized for a peak rate fixed beforehand (the training data's, or the
  env's configured rate scale) with the lightest variant.
* ``max_replicas=100`` (every config's ``scaling_cap``). Default None: the env's.

Latency is the p99 and throughput the replica throughput of `envs.model.perf` (IPA uses its
profile's measured maximum throughput, which our profiles do not hold).

Not a rule here: the ILP's objective weights. IPA's configs give them per family
(cited: ``video-1.yaml`` alpha 2, beta 1; the ``sample-*.yaml`` configs alpha 10,
beta 0.5), but every IPA-family policy solves with the evaluation's weights
(``agents.evaluation.config.IpaWeights``, the ``ipa:`` block of ``configs/eval/*.yaml``, and
``IPAPolicy``'s defaults): alpha 2 and beta 1, IPA's video values, for every family.
``preset("ipa", family)`` does not change them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from envs.config.errors import ConfigError, ProfileError
from envs.model import perf
from envs.model.profile_data import ProfileRow
from envs.model.spec import Pipeline, Stage

IPA_SLA_MULTIPLIER = 5.0  # cited: optimizer/models.py, Task.sla, "* 5" after the mean
# Cited from data/configs/final/*.yaml: (latency_margin, throughput_margin, threshold)
# per pipeline family (sample-audio-qa, sample-audio-sent, sample-nlp, sample-sum-qa,
# video-1). The configs' ILP weights (alpha, beta) are not taken per family: see the
# module docstring.
IPA_CONFIGS: dict[str, tuple[float, float, float]] = {
    "video": (0.0, 0.0, 4.0),
    "audio_qa": (100.0, -50.0, 1.0),
    "audio_sent": (100.0, -50.0, 1.0),
    "nlp": (0.0, -50.0, 4.0),
    "sum_qa": (0.0, -50.0, 5.0),
}
IPA_FA2_HIGH = {"video": ("yolov5s", "resnet101")}  # cited: video-3.yaml
IPA_RIM_REPLICAS = 3  # cited: video-5.yaml, initial_replica
IPA_SCALING_CAP = 100  # cited: scaling_cap in every final config


@dataclass(frozen=True)
class IpaRules:
    """Which of IPA's rules are on (defaults: the package's own choices).

    Attributes:
        sla_rule: ``profile`` (the file's SLA) or ``ipa`` (IPA's rule).
        sla_factor: IPA's ``sla_factor`` (5 in every final config).
        base_allocation: ``profile`` (the file's base cores) or ``ipa`` (threshold rule).
        threshold_rps: IPA's ``threshold`` for the base allocation.
        latency_margin_pct: Percent added to the planned latency.
        throughput_margin_pct: Percent added to the planned throughput (IPA: -50).
        on_infeasible: ``fallback`` or ``keep`` (the current configuration).
        fa2_high: ``most_accurate`` or ``ipa`` (IPA's configured variants).
        rim_replicas: ``peak`` or ``ipa`` (3 fixed replicas).
        max_replicas: Replica cap the env must have (None: any).
        family: IPA pipeline family the cited constants come from (``video``, ...).
    """

    sla_rule: Literal["profile", "ipa"] = "profile"
    sla_factor: float = 5.0
    base_allocation: Literal["profile", "ipa"] = "profile"
    threshold_rps: float = 4.0
    latency_margin_pct: float = 0.0
    throughput_margin_pct: float = 0.0
    on_infeasible: Literal["fallback", "keep"] = "fallback"
    fa2_high: Literal["most_accurate", "ipa"] = "most_accurate"
    rim_replicas: Literal["peak", "ipa"] = "peak"
    max_replicas: int | None = None
    family: str = "video"

    def __post_init__(self) -> None:
        if self.sla_factor <= 0 or self.threshold_rps < 0:
            raise ConfigError("rules: sla_factor must be > 0 and threshold_rps >= 0")
        if self.latency_margin_pct <= -100 or self.throughput_margin_pct <= -100:
            raise ConfigError("rules: margins must be > -100 % (a latency or throughput "
                              "of zero or less is meaningless)")
        if self.max_replicas is not None and self.max_replicas < 1:
            raise ConfigError("rules: max_replicas must be >= 1")


def preset(name: str, family: str = "video") -> IpaRules:
    """``package`` (every default) or ``ipa`` (every IPA rule, constants of ``family``).

    Args:
        name: ``package`` or ``ipa``.
        family: The pipeline family whose IPA constants to use (`IPA_CONFIGS`).

    Returns:
        The `IpaRules`.

    Raises:
        ConfigError: An unknown preset or family.
    """
    if name == "package":
        return IpaRules(family=family)
    if name != "ipa":
        raise ConfigError(f"replication preset must be 'package' or 'ipa', got {name!r}")
    if family not in IPA_CONFIGS:
        raise ConfigError(f"IPA has no configuration for pipeline family {family!r}; "
                          f"known: {sorted(IPA_CONFIGS)}")
    latency, throughput, threshold = IPA_CONFIGS[family]
    return IpaRules(sla_rule="ipa", base_allocation="ipa", threshold_rps=threshold,
                    latency_margin_pct=latency, throughput_margin_pct=throughput,
                    on_infeasible="keep", fa2_high="ipa", rim_replicas="ipa",
                    max_replicas=IPA_SCALING_CAP, family=family)


def with_margins(pipeline: Pipeline, rules: IpaRules) -> Pipeline:
    """The pipeline the optimiser plans with: p99 latency x (1 + latency margin), mean
    latency / (1 + throughput margin) so that `perf.replica_throughput_rps` scales by
    (1 + throughput margin). Energy rows are unchanged. No margins: the pipeline itself.

    Args:
        pipeline: The env's pipeline.
        rules: The rules (their latency and throughput margins).

    Returns:
        The margin-adjusted pipeline (or ``pipeline`` itself).
    """
    lat = 1.0 + rules.latency_margin_pct / 100.0
    thr = 1.0 + rules.throughput_margin_pct / 100.0
    if lat == 1.0 and thr == 1.0:
        return pipeline

    def row(r: ProfileRow) -> ProfileRow:
        return dataclasses.replace(r, latency_mean_ms=r.latency_mean_ms / thr,
                                   latency_p99_ms=r.latency_p99_ms * lat)

    stages = tuple(dataclasses.replace(s, variants=tuple(
        dataclasses.replace(v, profile=dataclasses.replace(
            v.profile, rows=tuple(row(r) for r in v.profile.rows)))
        for v in s.variants)) for s in pipeline.stages)
    return dataclasses.replace(pipeline, stages=stages)


def ipa_stage_sla_ms(stage: Stage, sla_factor: float) -> float:
    """IPA's stage SLA: 5 x mean over variants of sla_factor x batch-1 p99 latency at the
    variant's largest profiled core count.

    Args:
        stage: The stage.
        sla_factor: IPA's ``sla_factor``.

    Returns:
        The stage SLA in ms.
    """
    per_variant = [sla_factor * perf.batch_latency_p99_ms(v, 1, max(v.profile.core_counts))
                   for v in stage.variants]
    return IPA_SLA_MULTIPLIER * sum(per_variant) / len(per_variant)


def ipa_sla_ms(pipeline: Pipeline, sla_factor: float) -> float:
    """IPA's pipeline SLA: the sum of the stages' `ipa_stage_sla_ms`.

    Args:
        pipeline: The pipeline.
        sla_factor: IPA's ``sla_factor``.

    Returns:
        The end-to-end SLA in ms.
    """
    return sum(ipa_stage_sla_ms(s, sla_factor) for s in pipeline.stages)


def ipa_base_cores(pipeline: Pipeline, threshold_rps: float,
                   sla_factor: float) -> tuple[tuple[int, ...], ...]:
    """IPA's base allocation (``Task.base_allocations``): per stage, per variant, cores.

    Args:
        pipeline: The (margin-adjusted) pipeline.
        threshold_rps: The rate each variant's base allocation must sustain.
        sla_factor: IPA's ``sla_factor`` (for the stage SLA).

    Returns:
        Per stage, one core count per variant (in the stage's variant order).

    Raises:
        ProfileError: A stage is profiled at one core count only, or a variant lacks rows
            at a core count the stage uses (the message names them), or no core count
            of a variant sustains the threshold within the stage SLA.
    """
    out = []
    for stage in pipeline.stages:
        allocs = sorted({c for v in stage.variants for c in v.profile.core_counts})
        if len(allocs) < 2:
            raise ProfileError(
                f"IPA's base-allocation rule chooses among core counts, but stage "
                f"{stage.name!r} is profiled at cores={allocs} only; missing multi-core "
                "rows: profile every variant at two or more core counts, or use "
                "base_allocation='profile'")
        missing = [f"{v.name} at {c} cores (batches {list(stage.batch_sizes)})"
                   for v in stage.variants for c in allocs
                   if not all(v.profile.has(b, c) for b in stage.batch_sizes)]
        if missing:
            raise ProfileError(f"IPA's base-allocation rule needs every variant of stage "
                               f"{stage.name!r} at cores {allocs}; missing rows: "
                               f"{'; '.join(missing)}")
        sla = ipa_stage_sla_ms(stage, sla_factor)
        counts = [[sum(perf.replica_throughput_rps(v, b, c) >= threshold_rps
                       and perf.batch_latency_p99_ms(v, b, c) <= sla
                       for b in stage.batch_sizes) for c in allocs]
                  for v in stage.variants]
        out.append(_walk(stage, allocs, counts, threshold_rps, sla))
    return tuple(out)


def _walk(stage: Stage, allocs: list[int], counts: list[list[int]], threshold: float,
          sla: float) -> tuple[int, ...]:
    """IPA's monotone walk over allocations, variants from least to most accurate."""
    chosen: list[int] = []
    i = 0
    last = len(allocs) - 1
    for v, n in enumerate(counts):  # stage.variants are sorted by accuracy
        pick = None
        while pick is None:
            if v > 0 and i != last and n[i + 1] > n[i]:
                i += 1
            if n[i] != 0:
                pick = allocs[i]
            elif i == last:
                break
            else:
                i += 1
        if pick is None:
            raise ProfileError(
                f"IPA's base allocation: no core count of {stage.variants[v].name} (from "
                f"{allocs[i]} up) serves {threshold:g} rps within the stage SLA {sla:.0f} ms "
                "at any batch size; lower threshold_rps or raise sla_factor")
        chosen.append(pick)
    return tuple(chosen)


def fa2_high_variants(pipeline: Pipeline, rules: IpaRules) -> tuple[int, ...]:
    """Per stage, the FA2-high variant index: IPA's configured one, or the most accurate.

    Args:
        pipeline: The env's pipeline.
        rules: The rules (``fa2_high`` and ``family``).

    Returns:
        One variant index per stage.

    Raises:
        ConfigError: IPA gives no FA2-high configuration for the family.
        ProfileError: The profile lacks one of IPA's variants.
    """
    if rules.fa2_high == "most_accurate":
        return tuple(len(s.variants) - 1 for s in pipeline.stages)
    names = IPA_FA2_HIGH.get(rules.family)
    if names is None or len(names) != len(pipeline.stages):
        raise ConfigError(f"IPA's FA2-high configuration is known for {sorted(IPA_FA2_HIGH)} "
                          f"only, not family {rules.family!r}; use fa2_high='most_accurate'")
    return tuple(s.variant_index(n) for s, n in zip(pipeline.stages, names, strict=True))
