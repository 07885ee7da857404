"""The backends the env drives: the `Backend` protocol and `IntervalStats` (`base`), their
one builder (`stats`), the simulators' shared replica model (`replicas`), the fluid
simulator (`fluid`) and the request-level one (`requests`, its random numbers in `crn`).

May import: ``envs.config``, ``envs.model``, ``envs.workload``.
"""
