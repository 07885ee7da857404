"""IPA's LSTM load predictor (arXiv 2308.12871): an LSTM of 25 units and a linear output fed
with the 12 last per-10-second maxima (the last 120 s) and trained to predict the maximum
rate over the next 20 s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from envs.config.errors import ConfigError
from envs.workload.predictor_base import Predictor, as_history

__all__ = ["LSTMPredictor"]

_FORMAT_VERSION = 1


class _LSTMNet(nn.Module):
    """LSTM over the lag sequence followed by a linear output of its last hidden state."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (batch, lags) normalised inputs to (batch,) normalised forecasts."""
        out, _ = self.lstm(x.unsqueeze(-1))
        return self.head(out[:, -1, :]).squeeze(-1)


def _block_max(series: np.ndarray, block_s: int) -> np.ndarray:
    """Per-block maxima of a series whose length is a multiple of block_s."""
    return series.reshape(-1, block_s).max(axis=1)


class LSTMPredictor(Predictor):
    """IPA's LSTM load predictor: 12 per-10-s maxima in, max of the next 20 s out.

    Inputs and targets are standardised with the mean and standard deviation of the
    training per-block maxima; forecasts are mapped back to req/s and clipped at 0.
    """

    def __init__(
        self, hidden: int = 25, n_lags: int = 12, block_s: int = 10, horizon_s: int = 20
    ) -> None:
        """Create an unfitted predictor; call fit() or use LSTMPredictor.load().

        Args:
            hidden: LSTM units (IPA: 25).
            n_lags: Number of per-block maxima fed to the LSTM (IPA: 12).
            block_s: Seconds per block (IPA: 10, so the input covers 120 s).
            horizon_s: Seconds whose maximum rate is forecast (IPA: 20); a multiple of
                block_s.

        Raises:
            ConfigError: A size below 1, or horizon_s not a multiple of block_s.
        """
        if min(hidden, n_lags, block_s, horizon_s) < 1 or horizon_s % block_s:
            raise ConfigError(
                f"LSTMPredictor(hidden={hidden}, n_lags={n_lags}, block_s={block_s}, "
                f"horizon_s={horizon_s}): all must be >= 1 and horizon_s a multiple of block_s"
            )
        self.hidden = int(hidden)
        self.n_lags = int(n_lags)
        self.block_s = int(block_s)
        self.horizon_s = int(horizon_s)
        self.mean = 0.0
        self.std = 1.0
        self._net: _LSTMNet | None = None

    @property
    def fitted(self) -> bool:
        """Whether the predictor holds trained weights."""
        return self._net is not None

    @property
    def history_s(self) -> int:
        """Seconds of history the model reads (n_lags * block_s)."""
        return self.n_lags * self.block_s

    def make_dataset(self, trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Build (inputs, targets) in req/s from a trace, one sample per block boundary.

        Zeros (collection gaps) are removed first, as IPA does. Sample j reads the n_lags
        block maxima before a boundary and targets the maximum of the horizon after it.

        Args:
            trace: Per-second rates.

        Returns:
            inputs of shape (n, n_lags) and targets of shape (n,); empty when the trace
            is shorter than history_s + horizon_s seconds after removing zeros.
        """
        series = as_history(trace)
        series = series[series != 0]
        n_blocks = series.size // self.block_s
        blocks = _block_max(series[: n_blocks * self.block_s], self.block_s)
        ahead = self.horizon_s // self.block_s
        n = n_blocks - self.n_lags - ahead + 1
        if n <= 0:
            return np.empty((0, self.n_lags)), np.empty(0)
        lags = np.lib.stride_tricks.sliding_window_view(blocks, self.n_lags)[:n]
        future = np.lib.stride_tricks.sliding_window_view(blocks[self.n_lags :], ahead)[:n]
        return lags.copy(), future.max(axis=1)

    def fit(
        self,
        trace: np.ndarray,
        epochs: int,
        seed: int,
        prefix_s: int | None = None,
        lr: float = 1e-3,
        batch_size: int = 32,
        max_samples: int | None = None,
    ) -> list[float]:
        """Train on the first prefix_s seconds of a trace (zeros removed).

        Training is deterministic for a seed: the global torch RNG is forked, seeded and
        restored, and a single thread is used while fitting.

        Args:
            trace: Per-second rates (e.g. the damped Twitter trace).
            epochs: Passes over the samples.
            seed: Seed of weight initialisation and shuffling.
            prefix_s: Seconds of the trace to train on (IPA: 14 days); None uses all.
            lr: Adam learning rate (default 1e-3, Keras' Adam default).
            batch_size: Samples per gradient step.
            max_samples: Keep only the last max_samples samples (None keeps all).

        Returns:
            Mean training loss (normalised MSE) of each epoch.

        Raises:
            ConfigError: Bad arguments, or too little non-zero data for one sample.
        """
        if epochs < 1 or batch_size < 1 or not lr > 0:
            raise ConfigError(f"epochs={epochs}, batch_size={batch_size}, lr={lr} must be > 0")
        series = as_history(trace)[:prefix_s]
        inputs, targets = self.make_dataset(series)
        if max_samples is not None:
            inputs, targets = inputs[-max_samples:], targets[-max_samples:]
        if targets.size == 0:
            raise ConfigError(
                f"trace prefix of {series.size} s has too little non-zero data to train: "
                f"need more than {self.history_s + self.horizon_s} s"
            )
        self.mean = float(inputs.mean())
        self.std = float(inputs.std()) or 1.0
        x = torch.as_tensor((inputs - self.mean) / self.std, dtype=torch.float32)
        y = torch.as_tensor((targets - self.mean) / self.std, dtype=torch.float32)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = _LSTMNet(self.hidden)
                losses = self._train(net, x, y, epochs, lr, batch_size)
        finally:
            torch.set_num_threads(threads)
        self._net = net.eval()
        return losses

    @staticmethod
    def _train(
        net: _LSTMNet, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch_size: int
    ) -> list[float]:
        """Run Adam on MSE with shuffled mini-batches; return each epoch's mean loss."""
        optimiser = torch.optim.Adam(net.parameters(), lr=lr)
        loss_fn = nn.MSELoss()
        losses = []
        net.train()
        for _ in range(epochs):
            order = torch.randperm(x.shape[0])
            total = 0.0
            for i in range(0, x.shape[0], batch_size):
                idx = order[i : i + batch_size]
                optimiser.zero_grad()
                loss = loss_fn(net(x[idx]), y[idx])
                loss.backward()
                optimiser.step()
                total += loss.item() * idx.numel()
            losses.append(total / x.shape[0])
        return losses

    def _lags(self, history: np.ndarray) -> np.ndarray:
        """The n_lags block maxima ending now, front-padded with the earliest value."""
        recent = history[-self.history_s :]
        if recent.size < self.history_s:
            recent = np.concatenate([np.full(self.history_s - recent.size, recent[0]), recent])
        return _block_max(recent, self.block_s)

    def predict(self, history: np.ndarray) -> float:
        """Forecast the maximum rate of the next horizon_s seconds (0 for empty history).

        Args:
            history: Per-second rates observed so far, oldest first.

        Returns:
            The forecast, requests per second.

        Raises:
            ConfigError: Not fitted, or the history is not 1-D.
        """
        arr = as_history(history)
        if arr.size == 0:
            return 0.0
        return float(self.predict_batch(arr[None, :])[0])

    def predict_batch(self, histories: np.ndarray) -> np.ndarray:
        """Forecast for a (batch, seconds) array of equally long, non-empty histories.

        Args:
            histories: One history per row.

        Returns:
            One forecast per row, requests per second.

        Raises:
            ConfigError: Not fitted, or not a (batch, seconds > 0) array.
        """
        self._require_fitted()
        arr = np.asarray(histories, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ConfigError(f"histories must be (batch, seconds>0), got {arr.shape}")
        lags = np.stack([self._lags(row) for row in arr])
        return self._forward(lags)

    def predict_lags(self, lags: np.ndarray) -> np.ndarray:
        """Forecast from (batch, n_lags) block maxima in req/s, e.g. from make_dataset.

        Args:
            lags: One row of n_lags block maxima per forecast.

        Returns:
            One forecast per row, requests per second.

        Raises:
            ConfigError: Not fitted, or not a (batch, n_lags) array.
        """
        self._require_fitted()
        lags = np.asarray(lags, dtype=np.float64)
        if lags.ndim != 2 or lags.shape[1] != self.n_lags:
            raise ConfigError(f"lags must be (batch, {self.n_lags}), got {lags.shape}")
        return self._forward(lags)

    def _require_fitted(self) -> None:
        if self._net is None:
            raise ConfigError("LSTMPredictor is not fitted: call fit() or LSTMPredictor.load()")

    def _forward(self, lags: np.ndarray) -> np.ndarray:
        """Run the network on req/s lags and return req/s forecasts clipped at 0."""
        assert self._net is not None
        x = torch.as_tensor((lags - self.mean) / self.std, dtype=torch.float32)
        with torch.inference_mode():
            out = self._net(x).numpy().astype(np.float64)
        return np.maximum(out * self.std + self.mean, 0.0)

    def save(self, path: str | Path) -> None:
        """Write the configuration, normalisation and weights to path (torch format).

        Args:
            path: The file (its folder is created).

        Raises:
            ConfigError: Not fitted.
        """
        if self._net is None:
            raise ConfigError("LSTMPredictor is not fitted: nothing to save")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format_version": _FORMAT_VERSION,
                "config": {
                    "hidden": self.hidden,
                    "n_lags": self.n_lags,
                    "block_s": self.block_s,
                    "horizon_s": self.horizon_s,
                },
                "mean": self.mean,
                "std": self.std,
                "state_dict": self._net.state_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> LSTMPredictor:
        """Read a predictor written by save().

        Args:
            path: The file.

        Returns:
            The fitted predictor.

        Raises:
            ConfigError: The file is missing or is not a saved LSTMPredictor.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"LSTM predictor file {path} does not exist: train and save one")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("format_version") != _FORMAT_VERSION:
                raise ValueError(f"format_version {blob.get('format_version')!r}")
            predictor = cls(**blob["config"])
            net = _LSTMNet(predictor.hidden)
            net.load_state_dict(blob["state_dict"])
        except Exception as exc:  # any corruption gets one clear message
            raise ConfigError(
                f"{path} is not a saved LSTMPredictor ({exc}); write it with save()"
            ) from exc
        predictor.mean = float(blob["mean"])
        predictor.std = float(blob["std"])
        predictor._net = net.eval()
        return predictor
