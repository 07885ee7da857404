"""A training run's settings and files, the floor of `agents`: the training config
(`train_config`, with the validation split of the training days in `validation_split`),
the run folder's files (`run_files`: model, normalizer, JSON), checkpoints and their state
(`checkpoints`) and Weights & Biases (`tracking`: the reachability probe, a run's W&B run).

May import: no other room (it is the lowest); ``envs`` and third-party packages.
"""
