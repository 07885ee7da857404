"""Pipeline model, workloads, simulators and the Gymnasium env: the ground floor.

Rooms, lowest first; a room imports only rooms listed before it (tests/test_layering.py):

* `envs.config`: configuration loading, YAML, checks, the error classes, command-line
  helpers;
* `envs.model`: the spec, profiles, latency/throughput (`perf`), power and accuracy model;
* `envs.workload`: the workload's settings, traces, synthetic patterns, the day split,
  predictors;
* `envs.metering`: the `Meter` protocol and `EnergyReading`;
* `envs.serving`: how a stage serves requests (an LLM replica under continuous batching);
* `envs.backends`: the simulators (fluid, request-level) and `IntervalStats`;
* `envs.live`: the live pipeline (local servers, Kubernetes, Prometheus);
* the env itself, at this package's top: `envs.pipeline_env` (`PipelineEnv`),
  `envs.env_config`, `envs.env_kwargs`, `envs.observation`, `envs.actions`, `envs.reward`,
  `envs.backend_factory`, `envs.suspicious`;
* `envs.batched`: N fluid envs stepped together in arrays (for training).

May import: ``models`` and third-party packages; nothing of ``energy``, ``ipa_baseline``
or ``agents``.

``import envs`` registers the versioned env ids (lazily, "module:Class"):

* ``ipa/Pipeline-v2``: `envs.pipeline_env.PipelineEnv` (observation version 2);
* ``ipa/Pipeline-v1``: the same env with observation version 1 (the committed agents').
"""

from gymnasium.envs.registration import register, registry

ENV_IDS = ("ipa/Pipeline-v2", "ipa/Pipeline-v1")

for _version, _env_id in ((2, "ipa/Pipeline-v2"), (1, "ipa/Pipeline-v1")):
    if _env_id not in registry:
        register(id=_env_id, entry_point="envs.pipeline_env:PipelineEnv",
                 kwargs={"observation_version": _version})
