"""Every policy (`agents.policies`: IPA and its baselines, the rules, trained PPO), PPO
training, the one episode loop, training-time validation, evaluation, sweeps and reports.

May import: ``envs``, ``energy``, ``ipa_baseline``, ``models`` and third-party packages.
"""
