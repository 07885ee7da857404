"""Per-request token lengths of an LLM stage: a length distribution sampled by inverse CDF.

Two sources:

* a histogram (ML.ENERGY's ``output_length_distribution``: bin edges and counts), sampled
  uniformly within a bin (`TokenLengths.from_histogram`);
* a trace of real requests by path, a CSV file with one row per request and integer token
  columns (e.g. Azure's 2023 LLM inference trace, ``ContextTokens`` and
  ``GeneratedTokens``; Patel et al., Splitwise, ISCA 2024): a request's input and output
  lengths are one row's, so their correlation is kept (`TokenLengths.from_trace`).

A length is a function of a uniform number in [0, 1) (`TokenLengths.draw`), so the
simulator's common random numbers (`envs.backends.crn.uniform_draws`, keyed by the
request) give every policy the same lengths for the same requests.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.config.errors import TraceError
from envs.model.continuous import histogram_mean, histogram_problem


@dataclass(frozen=True)
class TokenLengths:
    """A distribution of (input, output) token lengths.

    Attributes:
        source: Where it comes from (a file and its columns, or a histogram's owner).
        output_edges: Bin edges of the output lengths (``k + 1`` values) for a histogram;
            empty for a trace.
        output_cdf: Cumulative share at each upper edge (``k`` values) for a histogram.
        rows: ``(n, 2)`` array of a trace's (input, output) lengths; empty for a histogram.
    """

    source: str
    output_edges: np.ndarray
    output_cdf: np.ndarray
    rows: np.ndarray

    @classmethod
    def from_histogram(cls, bins: Sequence[float], counts: Sequence[float],
                       source: str) -> TokenLengths:
        """Output lengths from a histogram (no input lengths).

        Args:
            bins: Bin edges, ``len(counts) + 1`` increasing values >= 0.
            counts: Requests per bin (>= 0, positive total).
            source: What the histogram is, for messages and provenance.

        Raises:
            TraceError: A malformed histogram (the message names the source and the fix).
        """
        problem = histogram_problem(bins, counts)
        if problem:
            raise TraceError(f"{source}: a length histogram needs increasing bin edges >= 0 "
                             "and non-negative counts with len(bins) == len(counts) + 1 and a "
                             f"positive total ({problem})")
        weights = np.asarray(counts, dtype=float)
        return cls(source, np.asarray(bins, dtype=float), np.cumsum(weights) / weights.sum(),
                   np.empty((0, 2)))

    @classmethod
    def from_trace(cls, path: str | Path, input_column: str = "ContextTokens",
                   output_column: str = "GeneratedTokens") -> TokenLengths:
        """(Input, output) lengths of every request in a CSV trace.

        Args:
            path: The CSV file (a header row, then one request a row).
            input_column: Column of input (prompt) tokens.
            output_column: Column of output (generated) tokens.

        Raises:
            TraceError: Missing file or column, or a value that is not an integer >= 0
                (>= 1 for outputs): one line naming the file, the row and the column.
        """
        path = Path(path)
        if not path.is_file():
            raise TraceError(f"length trace {path} does not exist; give the path of a CSV "
                             f"file with columns {input_column!r} and {output_column!r}")
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            for column in (input_column, output_column):
                if column not in header:
                    raise TraceError(f"{path}: no column {column!r} (columns: {header}); "
                                     "name the token columns with input_column/output_column")
            values = []
            for line, row in enumerate(reader, start=2):
                pair = []
                for column, low in ((input_column, 0), (output_column, 1)):
                    text = (row.get(column) or "").strip()
                    if not text.isdigit() or int(text) < low:
                        raise TraceError(f"{path}: line {line}, column {column!r} is {text!r}; "
                                         f"token counts must be integers >= {low}")
                    pair.append(int(text))
                values.append(pair)
        if not values:
            raise TraceError(f"{path}: no requests after the header; give a trace with rows")
        return cls(f"{path.name} ({input_column}, {output_column})", np.empty(0), np.empty(0),
                   np.asarray(values, dtype=float))

    @property
    def has_inputs(self) -> bool:
        """Whether input lengths are known (a trace) or not (a histogram)."""
        return self.rows.shape[0] > 0

    def draw(self, uniform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lengths for uniform numbers in [0, 1) (inverse CDF; one request each).

        Args:
            uniform: Uniform numbers, one per request.

        Returns:
            ``(input_tokens, output_tokens)``: whole numbers, outputs >= 1; inputs are NaN
            for a histogram, which gives none.
        """
        u = np.asarray(uniform, dtype=float)
        if self.has_inputs:
            idx = np.minimum((u * self.rows.shape[0]).astype(np.int64), self.rows.shape[0] - 1)
            return self.rows[idx, 0], self.rows[idx, 1]
        return np.full(u.shape, np.nan), np.maximum(1.0, np.rint(self.output_quantile(u)))

    def output_quantile(self, q: np.ndarray | float) -> np.ndarray:
        """The ``q`` quantile of the output length, interpolated within its bin (a histogram)
        or the empirical one (a trace).

        Args:
            q: Quantiles in [0, 1].
        """
        q = np.asarray(q, dtype=float)
        if self.has_inputs:
            return np.quantile(self.rows[:, 1], q, method="inverted_cdf")
        cdf = np.concatenate([[0.0], self.output_cdf])
        q = np.clip(q, 1e-15, 1.0)  # q = 0 is the lower edge of the first bin with requests
        # the first bin whose cumulative share reaches q has requests: a linear share within it
        k = np.minimum(np.searchsorted(cdf[1:], q, side="left"), self.output_cdf.size - 1)
        frac = np.clip((q - cdf[k]) / (cdf[k + 1] - cdf[k]), 0.0, 1.0)
        return self.output_edges[k] + (self.output_edges[k + 1] - self.output_edges[k]) * frac

    def mean_output(self) -> float:
        """Mean output length (bins at their midpoints for a histogram)."""
        if self.has_inputs:
            return float(self.rows[:, 1].mean())
        return histogram_mean(self.output_edges, np.diff(np.concatenate([[0.0],
                                                                         self.output_cdf])))
