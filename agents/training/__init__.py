"""PPO training: the run (`ppo`), its vectorised envs (`vec_envs`: batched, subprocess or
dummy, with the normalizer), the callback that validates, checkpoints and logs
(`callbacks`), constrained PPO's Lagrange multiplier on SLA violations (`lagrangian`),
training-time validation through the evaluation's episode loop
(`validation`), the metrics log (`metrics_log`), the progress line (`progress`) and the
stop request of SIGINT/SIGTERM (`stop`).

May import: ``agents.runs``, ``agents.policies``, ``agents.evaluation``.
"""
