"""Pipeline model, workloads, simulators and the Gymnasium env: the ground floor.

Holds the spec, the performance, power and accuracy model (`envs.perf`, `envs.power`,
`envs.accuracy`), config loading, workloads, predictors, backends (simulators, live
serving, cluster), and the `Meter` protocol.
May import: ``models`` and third-party packages; nothing of ``energy``, ``ipa_baseline``
or ``agents``.

``import envs`` registers the versioned env ids (lazily, "module:Class"):

* ``ipa/Pipeline-v1``: `envs.pipeline_env.PipelineEnv`.
"""

from gymnasium.envs.registration import register, registry

ENV_IDS = ("ipa/Pipeline-v1",)

if "ipa/Pipeline-v1" not in registry:
    register(id="ipa/Pipeline-v1", entry_point="envs.pipeline_env:PipelineEnv")
