"""Sweeps of training runs on Ray Tune: the sweep config and its trials (`config`), the
sweep folder's file names (`dirs`), the summary table (`summary`) and the sweep itself
(`sweep`: one `agents.training.ppo` run per trial, locally or on a cluster by address).

May import: ``agents.runs``, ``agents.training``.
"""
