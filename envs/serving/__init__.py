"""How a stage serves its requests, from measured points: an LLM replica under continuous
batching (`llm_curve`: token rate, power and inter-token latency as functions of the
running requests, with every interpolation rule stated; `continuous_batching`: the
replica as processor sharing with a cap, in event time, and its energy; `load_table`:
its p99, mean latency and power as functions of its request rate, measured on that
simulator, for planners and fluid models to read).

May import: ``envs.config``, ``envs.model``, ``envs.workload``.
"""
