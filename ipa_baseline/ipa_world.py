"""IPA's world: a pipeline with the SLA and base allocation IPA's rules give it, written
out as a profile for the env, and the check that an env is that world."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from envs.config.errors import ConfigError
from envs.model.profile_doc import write_profile
from envs.model.spec import Pipeline
from ipa_baseline.rules import IpaRules, ipa_base_cores, ipa_sla_ms, with_margins

__all__ = ["check_env_matches", "ipa_world", "write_ipa_profile"]


def ipa_world(pipeline: Pipeline, rules: IpaRules) -> Pipeline:
    """The pipeline with IPA's SLA and base allocation where the rules ask for them, both
    computed on the margin-adjusted profile (as IPA does: margins apply at load time).
    Rows are unchanged: the margins only enter what the policy plans with.

    Args:
        pipeline: The profile's pipeline.
        rules: The rules (``sla_rule``, ``base_allocation`` and their constants).

    Returns:
        The pipeline with those SLA and base cores (``pipeline`` itself when neither rule
        is IPA's).

    Raises:
        ProfileError: IPA's base allocation is asked for but the profile cannot give it
            (see `ipa_base_cores`).
    """
    planned = with_margins(pipeline, rules)
    out = pipeline
    if rules.sla_rule == "ipa":
        out = dataclasses.replace(out, sla_ms=ipa_sla_ms(planned, rules.sla_factor))
    if rules.base_allocation == "ipa":
        cores = ipa_base_cores(planned, rules.threshold_rps, rules.sla_factor)
        out = dataclasses.replace(out, stages=tuple(
            dataclasses.replace(s, variants=tuple(
                dataclasses.replace(v, base_cores=c) for v, c in zip(s.variants, cs,
                                                                     strict=True)))
            for s, cs in zip(out.stages, cores, strict=True)))
    return out


def write_ipa_profile(source: str | Path, out_path: str | Path, rules: IpaRules) -> Path:
    """Write a copy of a profile file with IPA's SLA and base cores (per ``rules``), for
    building the env the IPA-family policies with these rules drive.

    Args:
        source: A shipped pipeline's name or a profile file.
        out_path: Where to write the copy.
        rules: The rules that set the SLA and base cores.

    Returns:
        ``out_path``.

    Raises:
        ProfileError: The profile lacks rows a rule needs (named in the message).
        ConfigError: ``out_path`` cannot be written.
    """
    from envs.config.yaml_io import read_yaml_file
    from envs.model.profiles import load_pipeline, resolve_profile_path

    path = resolve_profile_path(source)
    doc = read_yaml_file(path)
    world = ipa_world(load_pipeline(path), rules)
    doc["sla_ms"] = round(world.sla_ms, 3)
    cores = {(s.name, v.name): v.base_cores for s in world.stages for v in s.variants}
    for stage in doc["stages"]:
        for variant in stage["variants"]:
            variant["base_cores"] = cores[(stage["name"], variant["name"])]
    return write_profile(doc, Path(out_path))


def check_env_matches(env_pipeline: Pipeline, rules: IpaRules) -> None:
    """ConfigError unless the env's SLA and base cores are what the rules prescribe.

    Args:
        env_pipeline: The env's pipeline.
        rules: The rules the policy applies.

    Raises:
        ConfigError: The env's SLA or a variant's base cores differ from `ipa_world`'s.
        ProfileError: The rules' base allocation cannot be computed (see `ipa_world`).
    """
    world = ipa_world(env_pipeline, rules)
    if abs(world.sla_ms - env_pipeline.sla_ms) > 1e-3 * max(world.sla_ms, 1.0):
        raise ConfigError(
            f"IPA's SLA rule gives {world.sla_ms:.0f} ms but the env's SLA is "
            f"{env_pipeline.sla_ms:.0f} ms; build the env with sla_ms={world.sla_ms:.1f} "
            "or from ipa_baseline.write_ipa_profile(...)")
    for s, w in zip(env_pipeline.stages, world.stages, strict=True):
        for v, wv in zip(s.variants, w.variants, strict=True):
            if v.base_cores != wv.base_cores:
                raise ConfigError(
                    f"IPA's base allocation gives {s.name}/{v.name} {wv.base_cores} cores, "
                    f"the env's profile {v.base_cores}; build the env from "
                    "ipa_baseline.write_ipa_profile(...)")
