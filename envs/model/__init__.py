"""The pipeline and hardware model, defined once: the spec (`spec`: `Pipeline`, `Stage`,
`ModelVariant`, `Hardware`, `Decision`), profiles and their rows with provenance
(`profile_data`, `profile_format`, `profiles`, `profile_doc`, `densify`), the latency and
throughput math (`perf`), the power model on top of it (`power`), IPA's accuracy modes
(`accuracy`), an LLM replica's curve from its measured caps (`llm_curve`), its load table
(`load_table`: p99, mean latency and power by request rate) and a continuously batched
stage's latency, capacity and power read from it (`continuous_perf`). Simulators, the
batched env, the ILP, agents and reports all call these.

May import: ``envs.config``.
"""
