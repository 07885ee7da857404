"""Tests of envs.workload.predictors, envs.workload.lstm_predictor and
envs.workload.predictor_base: reactive and LSTM load predictors and the factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from envs.config.errors import ConfigError
from envs.workload.lstm_predictor import LSTMPredictor
from envs.workload.predictor_base import Predictor
from envs.workload.predictors import PREDICTORS, ReactivePredictor, make_predictor


def _sine(n: int, seed: int) -> np.ndarray:
    """Integer sine-like rates with a ten-minute period and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.rint(15 + 10 * np.sin(2 * np.pi * t / 600) + rng.normal(0, 1.5, n)).clip(0)


@pytest.fixture(scope="module")
def fitted() -> tuple[LSTMPredictor, list[float]]:
    predictor = LSTMPredictor()
    losses = predictor.fit(_sine(4000, seed=0), epochs=3, seed=0, lr=1e-2)
    return predictor, losses


# --------------------------------------------------------------------------- reactive


def test_reactive_max_of_window() -> None:
    p = ReactivePredictor(window_s=3)
    assert isinstance(p, Predictor)
    assert p.predict(np.array([9.0, 1.0, 4.0, 2.0])) == 4.0
    assert p.predict(np.array([5.0])) == 5.0
    assert p.predict(np.array([])) == 0.0
    assert ReactivePredictor().predict(np.arange(30.0)) == 29.0
    assert ReactivePredictor().horizon_s == 10
    p.reset()


def test_reactive_rejects_bad_window() -> None:
    with pytest.raises(ConfigError):
        ReactivePredictor(window_s=0)
    with pytest.raises(ConfigError):
        ReactivePredictor().predict(np.zeros((2, 2)))


# --------------------------------------------------------------------------- LSTM dataset


def test_make_dataset_windows_and_targets() -> None:
    p = LSTMPredictor(n_lags=2, block_s=2, horizon_s=4)
    trace = np.array([1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12], dtype=float)
    x, y = p.make_dataset(trace)  # zero removed -> 1..12, blocks maxima 2,4,6,8,10,12
    np.testing.assert_array_equal(x, [[2, 4], [4, 6], [6, 8]])
    np.testing.assert_array_equal(y, [8, 10, 12])


def test_make_dataset_ipa_shapes() -> None:
    p = LSTMPredictor()
    assert (p.n_lags, p.block_s, p.horizon_s, p.history_s, p.hidden) == (12, 10, 20, 120, 25)
    x, y = p.make_dataset(np.arange(1, 1001, dtype=float))
    assert x.shape == (100 - 12 - 2 + 1, 12)
    assert y[0] == 140  # max of seconds 121..140 (values start at 1)
    assert x[0, -1] == 120


def test_make_dataset_too_short_is_empty_and_fit_raises() -> None:
    p = LSTMPredictor()
    x, y = p.make_dataset(np.ones(100))
    assert x.shape == (0, 12) and y.size == 0
    with pytest.raises(ConfigError, match="too little"):
        p.fit(np.concatenate([np.ones(100), np.zeros(1000)]), epochs=1, seed=0)


# --------------------------------------------------------------------------- LSTM training


def test_lstm_learns(fitted: tuple[LSTMPredictor, list[float]]) -> None:
    predictor, losses = fitted
    assert len(losses) == 3
    assert losses[-1] < 0.5 * losses[0]
    x, y = predictor.make_dataset(_sine(2000, seed=1))  # held-out trace
    mse = np.mean((predictor.predict_lags(x) - y) ** 2)
    constant_mse = np.mean((y - y.mean()) ** 2)
    persistence_mse = np.mean((x[:, -1] - y) ** 2)
    assert mse < 0.2 * constant_mse
    assert mse < persistence_mse


def test_lstm_fit_is_deterministic_and_keeps_global_rng() -> None:
    trace = _sine(1500, seed=2)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = LSTMPredictor(hidden=8)
    losses_a = a.fit(trace, epochs=2, seed=7, lr=1e-2)
    assert torch.rand(1).item() == before.item()
    b = LSTMPredictor(hidden=8)
    losses_b = b.fit(trace, epochs=2, seed=7, lr=1e-2)
    assert losses_a == losses_b
    history = trace[:300]
    assert a.predict(history) == b.predict(history)


def test_lstm_prefix_max_samples_and_bad_epochs() -> None:
    trace = _sine(3000, seed=3)
    p = LSTMPredictor(hidden=4)
    p.fit(trace, epochs=1, seed=0, prefix_s=200)  # 20 blocks -> 7 samples
    assert p.fitted
    n_prefix = LSTMPredictor().make_dataset(trace[:200])[1].size
    assert n_prefix == 7
    p.fit(trace, epochs=1, seed=0, max_samples=5)
    assert p.fitted
    with pytest.raises(ConfigError):
        p.fit(trace, epochs=0, seed=0)


def test_lstm_predict_short_history_pads_with_earliest(
    fitted: tuple[LSTMPredictor, list[float]],
) -> None:
    predictor, _ = fitted
    short = np.array([12.0, 14.0, 20.0])
    padded = np.concatenate([np.full(117, 12.0), short])
    assert predictor.predict(short) == predictor.predict(padded)
    assert predictor.predict(np.array([])) == 0.0
    long = _sine(500, seed=4)
    assert predictor.predict(long) == predictor.predict(long[-120:])
    value = predictor.predict(long)
    assert isinstance(value, float) and value >= 0


def test_lstm_predict_batch_matches_predict(fitted: tuple[LSTMPredictor, list[float]]) -> None:
    predictor, _ = fitted
    histories = np.stack([_sine(150, seed=s) for s in range(3)])
    batch = predictor.predict_batch(histories)
    single = [predictor.predict(h) for h in histories]
    np.testing.assert_allclose(batch, single, rtol=1e-6)


def test_lstm_unfitted_raises(tmp_path: Path) -> None:
    p = LSTMPredictor()
    assert not p.fitted
    with pytest.raises(ConfigError, match="not fitted"):
        p.predict(np.ones(10))
    with pytest.raises(ConfigError, match="not fitted"):
        p.save(tmp_path / "x.pt")


def test_lstm_bad_config() -> None:
    with pytest.raises(ConfigError):
        LSTMPredictor(horizon_s=15)
    with pytest.raises(ConfigError):
        LSTMPredictor(hidden=0)


def test_lstm_save_load_roundtrip(
    fitted: tuple[LSTMPredictor, list[float]], tmp_path: Path
) -> None:
    predictor, _ = fitted
    path = tmp_path / "sub" / "lstm.pt"
    predictor.save(path)
    loaded = LSTMPredictor.load(path)
    assert (loaded.mean, loaded.std, loaded.horizon_s) == (
        predictor.mean,
        predictor.std,
        predictor.horizon_s,
    )
    histories = np.stack([_sine(200, seed=s) for s in range(5)])
    np.testing.assert_array_equal(
        loaded.predict_batch(histories), predictor.predict_batch(histories)
    )
    assert loaded.predict(histories[0]) == predictor.predict(histories[0])
    via_factory = make_predictor("lstm", path=path)
    assert via_factory.predict(histories[1]) == predictor.predict(histories[1])


def test_lstm_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        LSTMPredictor.load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="not a saved LSTMPredictor"):
        LSTMPredictor.load(junk)


# --------------------------------------------------------------------------- factory


def test_make_predictor() -> None:
    assert PREDICTORS == ("reactive", "lstm")
    reactive = make_predictor("reactive", window_s=5)
    assert isinstance(reactive, ReactivePredictor) and reactive.window_s == 5
    lstm = make_predictor("lstm", hidden=8)
    assert isinstance(lstm, LSTMPredictor) and lstm.hidden == 8


def test_make_predictor_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'reactive'"):
        make_predictor("reactiv")
    with pytest.raises(ConfigError, match="did you mean 'lstm'"):
        make_predictor("lstn")
    with pytest.raises(ConfigError, match="bad arguments"):
        make_predictor("reactive", windows=3)


def test_fit_predictor_cli_then_the_env_uses_it(tmp_path, tiny_profile_path) -> None:
    import gymnasium

    import envs  # noqa: F401
    from envs.workload.fit_predictor import main

    out = tmp_path / "lstm.pt"
    assert main(["--pattern", "fluctuating", "--days", "0.1", "--epochs", "2",
                 "--out", str(out)]) == 0
    env = gymnasium.make("ipa/Pipeline-v2", pipeline=str(tiny_profile_path),
                         predictor="lstm", predictor_path=str(out))
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.layout.forecast_rps(obs) > 0
    assert main(["--trace", str(tmp_path / "missing.txt"), "--out", str(out)]) == 2
