"""The `Predictor` interface every load forecaster implements, and its history check."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from envs.config.errors import ConfigError

__all__ = ["Predictor", "as_history"]


def as_history(history: np.ndarray) -> np.ndarray:
    """History as a 1-D float64 array, rejecting other shapes.

    Args:
        history: Per-second rates.

    Returns:
        The array.

    Raises:
        ConfigError: Not one-dimensional.
    """
    arr = np.asarray(history, dtype=np.float64)
    if arr.ndim != 1:
        raise ConfigError(f"history must be a 1-D array of per-second rates, got {arr.shape}")
    return arr


class Predictor(ABC):
    """Forecasts the request rate (req/s) for the next adaptation horizon.

    Attributes:
        horizon_s: Seconds ahead that a forecast covers.
    """

    horizon_s: int

    @property
    def history_s(self) -> int:
        """Seconds of history a forecast reads; an episode's warm-up must cover them so
        the first forecast is the one a deployed adapter would make (see
        `envs.workload.settings.WorkloadConfig.warmup_s`)."""
        return 0

    @abstractmethod
    def predict(self, history: np.ndarray) -> float:
        """Forecast the rate of the next horizon_s seconds.

        Args:
            history: Per-second rates observed so far, oldest first, up to now.

        Returns:
            The forecast rate in requests/s (non-negative).
        """

    def reset(self) -> None:  # noqa: B027 - stateless predictors need no reset
        """Forget any per-episode state; a no-op for stateless predictors."""
