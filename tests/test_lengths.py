"""Per-request token lengths: a histogram's inverse CDF by hand, a CSV trace (Azure's
2023 LLM trace where ../shared has it), common random numbers, bad traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs.backends.crn import crn_streams, service_draws, uniform_draws
from envs.config.errors import TraceError
from envs.workload.lengths import TokenLengths

AZURE = Path(__file__).resolve().parents[2] / "shared" / "data" / "azure_llm_2023"


def test_histogram_quantiles_by_hand() -> None:
    # 1 request in [0, 10), none in [10, 20), 3 in [20, 60)
    lengths = TokenLengths.from_histogram([0, 10, 20, 60], [1, 0, 3], "hand")
    np.testing.assert_allclose(lengths.output_quantile(np.array([0.125, 0.25, 0.5, 1.0])),
                               [5.0, 10.0, 20 + 40 / 3, 60.0])
    # q = 0 is the lower edge of the first bin that has requests
    assert float(TokenLengths.from_histogram([0, 10, 20], [0, 2], "h").output_quantile(0.0)) \
        == pytest.approx(10.0)
    assert lengths.mean_output() == pytest.approx(0.25 * 5 + 0.75 * 40)
    inputs, outputs = lengths.draw(np.array([0.125, 0.999]))
    assert np.isnan(inputs).all()
    np.testing.assert_array_equal(outputs, [5.0, 60.0])
    # at least one token
    assert TokenLengths.from_histogram([0, 1], [1], "h").draw(np.array([0.1]))[1][0] == 1.0


@pytest.mark.parametrize("bins, counts", [([0, 10], [1, 2]), ([10, 5], [1]), ([0, 10], [0]),
                                          ([0, 10], [-1]), ([-5, 10], [1])])
def test_bad_histograms(bins: list, counts: list) -> None:
    with pytest.raises(TraceError, match="where: a length histogram needs"):
        TokenLengths.from_histogram(bins, counts, "where")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_trace_rows_keep_input_and_output_together(tmp_path: Path) -> None:
    path = write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                           "t,100,7\nt,2000,30\nt,50,400\nt,0,1\n")
    lengths = TokenLengths.from_trace(path)
    inputs, outputs = lengths.draw(np.array([0.0, 0.3, 0.5, 0.99]))
    np.testing.assert_array_equal(inputs, [100, 2000, 50, 0])
    np.testing.assert_array_equal(outputs, [7, 30, 400, 1])
    assert lengths.mean_output() == pytest.approx(438 / 4)
    assert float(lengths.output_quantile(0.5)) == 7.0


@pytest.mark.parametrize("text, match", [
    ("a,ContextTokens\n1,2\n", r"trace\.csv: no column 'GeneratedTokens'"),
    ("ContextTokens,GeneratedTokens\n5,-3\n", r"line 2, column 'GeneratedTokens' is '-3'"),
    ("ContextTokens,GeneratedTokens\n5,3\n5,2.5\n", r"line 3, column 'GeneratedTokens' is '2.5'"),
    ("ContextTokens,GeneratedTokens\n,3\n", r"line 2, column 'ContextTokens' is ''"),
    ("ContextTokens,GeneratedTokens\n5,0\n", "integers >= 1"),
    ("ContextTokens,GeneratedTokens\n", "no requests after the header"),
])
def test_bad_traces(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(TraceError, match=match):
        TokenLengths.from_trace(write(tmp_path, text))


def test_a_missing_trace_names_the_columns(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="does not exist; give the path of a CSV file with "
                                         "columns 'ContextTokens' and 'GeneratedTokens'"):
        TokenLengths.from_trace(tmp_path / "nope.csv")


def test_azure_conversation_trace() -> None:
    path = AZURE / "AzureLLMInferenceTrace_conv.csv"
    if not path.is_file():
        pytest.skip(f"Azure trace absent at {path}")
    lengths = TokenLengths.from_trace(path)
    # the data README: 19,366 requests, output mean 211, median 129; input mean 1,155
    assert lengths.rows.shape == (19366, 2)
    assert lengths.mean_output() == pytest.approx(211, abs=0.5)
    assert float(lengths.output_quantile(0.5)) == pytest.approx(129, abs=1)
    assert lengths.rows[:, 0].mean() == pytest.approx(1155, abs=0.5)


def test_common_random_numbers_give_the_same_lengths() -> None:
    _, key = crn_streams(4)
    origins = np.array([0.25, 1.5, 1.5000001, 7.0])
    u = uniform_draws(origins, 3, key)
    assert ((u >= 0) & (u < 1)).all()
    np.testing.assert_array_equal(u, uniform_draws(origins[::-1], 3, key)[::-1])
    assert not np.array_equal(u, uniform_draws(origins, 4, key))
    # the service draws are the exponential transform of the same uniforms
    np.testing.assert_allclose(service_draws(origins, 3, key), -np.log1p(-u), rtol=0)
