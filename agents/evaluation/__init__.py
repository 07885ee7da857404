"""Evaluation: the one episode loop (`episode`), the evaluation config (`config`) and its
checks against the agents (`setup`), the windows and the training peak (`windows`), the
policies built by name (`registry`), every policy on the same windows with the baselines
tuned on validation windows (`compare`), statistics (`statistics`), the report and its
plots (`report`, `plots`) and one run end to end with its W&B log (`run`).

May import: ``agents.runs``, ``agents.policies``.
"""
