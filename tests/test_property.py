"""Property-based tests: arbitrary input to the config loader, the override parser, the
trace reader and the profile loader gives a value or the package's own error, never
another exception (a traceback would be a bug)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.runs.train_config import TrainConfig
from envs.config.errors import IpaEnergyError
from envs.config.loader import apply_overrides, from_dict
from envs.config.yaml_io import read_yaml
from envs.env_config import EnvConfig
from envs.model.profiles import load_pipeline
from envs.workload.traces import load_trace
from tests.conftest import tiny_profile_doc

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
keys = st.sampled_from(["env", "agent", "run", "eval", "tracking", "workload", "reward",
                        "seed", "gamma", "batch_size", "n_envs", "interval_s", "pipeline",
                        "cold_start_s", "max_cores", "batch_sizes", "source", "mode"]) | st.text(
    max_size=8)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(keys, inner, max_size=5), max_leaves=20)


def _value_or_own_error(call) -> None:
    with contextlib.suppress(IpaEnergyError):
        call()


@SETTINGS
@given(documents)
def test_config_loader_gives_a_config_or_a_config_error(doc: object) -> None:
    _value_or_own_error(lambda: from_dict(TrainConfig, doc))
    _value_or_own_error(lambda: from_dict(EnvConfig, doc))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["env", "agent", "run"]),
                       st.dictionaries(keys, scalars, max_size=4), max_size=3))
def test_near_valid_sections_give_a_config_or_a_config_error(doc: dict) -> None:
    _value_or_own_error(lambda: from_dict(TrainConfig, doc))


@SETTINGS
@given(st.text(max_size=60))
def test_yaml_reader_gives_a_value_or_a_config_error(text: str) -> None:
    _value_or_own_error(lambda: read_yaml(text))


override_text = st.one_of(
    st.text(max_size=30),
    st.builds(lambda k, v: f"{k}={v}",
              st.sampled_from(["env.cold_start_s", "agent.gamma", "run.n_envs", "env",
                               "env.workload.seed", "env.batch_sizes", "a..b", ".x", "run"]),
              st.text(max_size=15) | st.sampled_from(["1e-4", "[1, 2]", "{a: 1}", ".nan",
                                                      "-5", "null", "'3'", "2001-13-01"])))


@SETTINGS
@given(st.lists(override_text, max_size=4))
def test_override_parser_gives_a_config_or_a_config_error(items: list[str]) -> None:
    def load() -> None:
        from_dict(TrainConfig, apply_overrides({}, items))

    _value_or_own_error(load)


trace_tokens = st.one_of(st.integers(-5, 10**6).map(str), st.floats().map(repr),
                         st.sampled_from(["nan", "inf", "-0", "1e3", "x", "", "1,2", "\x00"]),
                         st.text(max_size=5))


@SETTINGS
@given(st.lists(trace_tokens, max_size=12), st.sampled_from([" ", "\n", ",", "\t"]),
       st.floats(0.5, 10), st.integers(-3, 15) | st.none(), st.integers(-3, 15) | st.none())
def test_trace_reader_gives_rates_or_a_package_error(tokens: list[str], sep: str,
                                                     damping: float, start: int | None,
                                                     end: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.txt"
        path.write_text(sep.join(tokens), encoding="utf-8", errors="surrogatepass")
        try:
            rates = load_trace(path, damping, start, end)
        except IpaEnergyError:
            return
    assert rates.ndim == 1 and rates.size > 0
    assert np.isfinite(rates).all() and (rates >= 0).all()


def _mutations() -> st.SearchStrategy:
    paths = st.lists(st.sampled_from(["stages", 0, 1, "variants", "rows", "name", "batch_sizes",
                                      "sla_ms", "pools", "device_idle_w", "always_on", "sources",
                                      "row_columns", 2, "accuracy", "base_cores"]),
                     min_size=1, max_size=5)
    return st.lists(st.tuples(paths, documents), max_size=3)


@SETTINGS
@given(_mutations())
def test_profile_loader_gives_a_pipeline_or_a_package_error(mutations: list) -> None:
    doc = tiny_profile_doc()
    for path, value in mutations:
        node = doc
        for part in path[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        else:
            with contextlib.suppress(IndexError, TypeError):
                node[path[-1]] = value
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "p.yaml"
        file.write_text(yaml.safe_dump(doc))
        _value_or_own_error(lambda: load_pipeline(file))
