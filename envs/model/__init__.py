"""The pipeline and hardware model, defined once: the spec (`spec`: `Pipeline`, `Stage`,
`ModelVariant`, `Hardware`, `Decision`), profiles and their rows with provenance
(`profile_data`, `profile_format`, `profiles`, `profile_doc`, `densify`), the latency and
throughput math (`perf`), the power model on top of it (`power`) and IPA's accuracy modes
(`accuracy`). Simulators, the batched env, the ILP, agents and reports all call these.

May import: ``envs.config``.
"""
