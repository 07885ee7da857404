"""How a stage serves its requests, simulated from measured points: an LLM replica under
continuous batching (`continuous_batching`: the replica as processor sharing with a cap,
in event time, and its energy, over `envs.model.llm_curve`'s curve; `load_table`: its
p99, mean latency and power as functions of its request rate, measured on that simulator,
held in `envs.model.load_table.LoadTable` for planners and fluid models to read).

May import: ``envs.config``, ``envs.model``, ``envs.workload``.
"""
