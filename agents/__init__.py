"""PPO training, the rule baselines, the one episode loop, evaluation, sweeps and reports.

May import: ``envs``, ``energy``, ``ipa_baseline``, ``models`` and third-party packages.
"""
