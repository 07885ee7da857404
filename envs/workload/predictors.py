"""Load predictors: forecast the request rate of the next adaptation horizon from history.

ReactivePredictor uses the recent maximum. LSTMPredictor (`envs.workload.lstm_predictor`) is IPA's
predictor (arXiv 2308.12871). `make_predictor` builds either by name; the interface is
`envs.workload.predictor_base.Predictor`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.config.errors import ConfigError
from envs.config.suggest import did_you_mean
from envs.workload.lstm_predictor import LSTMPredictor
from envs.workload.predictor_base import Predictor, as_history

__all__ = ["PREDICTORS", "ReactivePredictor", "make_predictor"]

PREDICTORS: tuple[str, ...] = ("reactive", "lstm")
"""Names accepted by make_predictor."""


class ReactivePredictor(Predictor):
    """Predicts the maximum rate of the last window_s seconds (0 for empty history)."""

    def __init__(self, window_s: int = 10, horizon_s: int = 10) -> None:
        """Create the predictor.

        Args:
            window_s: Seconds of history whose maximum is the forecast.
            horizon_s: Seconds ahead that a forecast covers (the adaptation interval).

        Raises:
            ConfigError: Either is below 1.
        """
        if window_s < 1 or horizon_s < 1:
            raise ConfigError(f"window_s={window_s} and horizon_s={horizon_s} must be >= 1")
        self.window_s = int(window_s)
        self.horizon_s = int(horizon_s)

    @property
    def history_s(self) -> int:
        """The window whose maximum is the forecast."""
        return self.window_s

    def predict(self, history: np.ndarray) -> float:
        """The maximum of the last window_s seconds of history.

        Args:
            history: Per-second rates observed so far, oldest first.

        Returns:
            The forecast, requests per second (0 for an empty history).

        Raises:
            ConfigError: The history is not 1-D.
        """
        arr = as_history(history)
        if arr.size == 0:
            return 0.0
        return float(arr[-self.window_s :].max())


def make_predictor(name: str, **kwargs: Any) -> Predictor:
    """Build a predictor by name.

    Args:
        name: "reactive" or "lstm".
        **kwargs: Constructor arguments; for "lstm", path=... loads a saved predictor.

    Returns:
        The predictor.

    Raises:
        ConfigError: Unknown name (with a suggestion) or unknown arguments.
    """
    if name not in PREDICTORS:
        raise ConfigError(
            f"unknown predictor {name!r}{did_you_mean(str(name), PREDICTORS)}: "
            f"choose one of {', '.join(PREDICTORS)}"
        )
    if name == "lstm" and "path" in kwargs:
        path = kwargs.pop("path")
        if kwargs:
            raise ConfigError(f"lstm predictor with path= takes no other arguments: {kwargs}")
        return LSTMPredictor.load(path)
    cls = ReactivePredictor if name == "reactive" else LSTMPredictor
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for predictor {name!r}: {exc}") from exc
