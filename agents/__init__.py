"""Every policy, their training, evaluation and sweeps, in rooms by job (lowest first):

* `agents.runs`: a training run's config, files, checkpoints and W&B tracking;
* `agents.policies`: every policy behind one protocol (IPA and its baselines, the rules,
  trained PPO);
* `agents.evaluation`: the one episode loop, windows, tuning, statistics, report, plots;
* `agents.training`: PPO training and training-time validation;
* `agents.sweeps`: Ray Tune sweeps of training runs;
* `agents.train_run`: what ``train.py`` runs (one training run or a sweep).

A room imports only rooms listed before it (tests/test_layering.py).
May import: ``envs``, ``energy``, ``ipa_baseline``, ``models`` and third-party packages.
"""
