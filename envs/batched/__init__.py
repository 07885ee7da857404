"""N fluid-backend `PipelineEnv`s stepped together in array operations (for training).

`BatchedPipelineVecEnv` is an SB3 `VecEnv` with the observations, rewards and ``info`` of
N `PipelineEnv`s; `envs.batched.fluid` is the array-form fluid simulator underneath and
`envs.batched.array_perf` the array forms of the `envs.model.perf` functions it calls;
`envs.batched.tables` its per-configuration tables (`envs.batched.continuous`: the load
tables of a continuously batched stage); `envs.batched.actions` decodes and
repairs actions, `envs.batched.observation` builds observations, `envs.batched.support`
says which configs it runs exactly.

May import: ``envs.config``, ``envs.model``, ``envs.workload``, ``envs.backends`` and
``envs`` (the env at the package's top: it reproduces `PipelineEnv`'s steps).
"""

from envs.batched.support import unsupported_reason
from envs.batched.vecenv import BatchedPipelineVecEnv

__all__ = ["BatchedPipelineVecEnv", "unsupported_reason"]
