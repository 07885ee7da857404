"""Where arrival rates come from and how they are forecast: the workload's settings
(`settings.WorkloadConfig`), synthetic patterns (`synthetic`), trace files and warm-up
histories (`traces`), the day split and held-out days (`day_split`), and the predictors
(`predictor_base`, `predictors`, `lstm_predictor`; `fit_predictor` trains the LSTM).

May import: ``envs.config``, ``envs.model``.
"""
