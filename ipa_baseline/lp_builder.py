"""A small sparse builder for HiGHS mixed-integer programs (columns, rows, one pass to a
`highspy.HighsLp`, solved to its optimum). No model logic lives here."""

from __future__ import annotations

from collections.abc import Iterable

import highspy
import numpy as np

from ipa_baseline.errors import InfeasibleError

INF = highspy.kHighsInf
_OPTIONS = {"output_flag": False, "mip_rel_gap": 0.0, "mip_abs_gap": 1e-9,
            "threads": 1, "presolve": "on"}


class LpBuilder:
    """Columns and rows of a maximisation problem, built incrementally."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self._rows: list[int] = []
        self._cols: list[int] = []
        self._vals: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []

    def col(self, cost: float, lower: float, upper: float, integer: bool) -> int:
        """Add a column; returns its index.

        Args:
            cost: Its objective coefficient (maximised).
            lower: Its lower bound (``-INF`` for none).
            upper: Its upper bound (``INF`` for none).
            integer: Whether it is an integer variable.

        Returns:
            The column's index.
        """
        self.cost.append(cost)
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, entries: Iterable[tuple[int, float]], lower: float, upper: float) -> int:
        """Add a row ``lower <= sum(val * col) <= upper``; returns its index.

        Args:
            entries: ``(column index, coefficient)`` pairs of the row.
            lower: The row's lower bound (``-INF`` for none).
            upper: The row's upper bound (``INF`` for none).

        Returns:
            The row's index.
        """
        index = len(self.row_lower)
        for col, val in entries:
            self._rows.append(index)
            self._cols.append(col)
            self._vals.append(val)
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        return index

    def append(self, block: LpBuilder, scale: float = 1.0) -> tuple[int, int]:
        """Copy another builder's columns (costs times ``scale``) and rows after this one's.

        Args:
            block: The builder to copy (unchanged).
            scale: Factor on the copied objective coefficients.

        Returns:
            The index of the first copied column and of the first copied row.
        """
        col_offset, row_offset = len(self.cost), len(self.row_lower)
        self.cost.extend(scale * c for c in block.cost)
        self.lower.extend(block.lower)
        self.upper.extend(block.upper)
        self.integer.extend(block.integer)
        self._rows.extend(row_offset + i for i in block._rows)
        self._cols.extend(col_offset + j for j in block._cols)
        self._vals.extend(block._vals)
        self.row_lower.extend(block.row_lower)
        self.row_upper.extend(block.row_upper)
        return col_offset, row_offset

    def highs(self) -> highspy.Highs:
        """A `highspy.Highs` holding the model (maximise), with exact-gap options.

        Returns:
            The solver, model passed, not yet run.
        """
        n = len(self.cost)
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = len(self.row_lower)
        lp.col_cost_ = np.asarray(self.cost, dtype=float)
        lp.col_lower_ = np.asarray(self.lower, dtype=float)
        lp.col_upper_ = np.asarray(self.upper, dtype=float)
        lp.row_lower_ = np.asarray(self.row_lower, dtype=float)
        lp.row_upper_ = np.asarray(self.row_upper, dtype=float)
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else
                           highspy.HighsVarType.kContinuous for i in self.integer]
        cols = np.asarray(self._cols, dtype=np.int64)
        rows = np.asarray(self._rows, dtype=np.int64)
        order = np.lexsort((rows, cols))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(cols[order], np.arange(n + 1))
        lp.a_matrix_.index_ = rows[order]
        lp.a_matrix_.value_ = np.asarray(self._vals, dtype=float)[order]
        highs = highspy.Highs()
        for key, value in _OPTIONS.items():
            highs.setOptionValue(key, value)
        highs.passModel(lp)
        return highs

    def solve(self, where: str, fix: str = "this is a bug, please report it") -> highspy.Highs:
        """Run HiGHS on a model whose feasibility was established beforehand (up to ``fix``).

        Args:
            where: What was solved, for the message (e.g. ``at 3.0 rps although ...``).
            fix: What the user should do if HiGHS finds no optimum.

        Returns:
            The solver, at its optimum.

        Raises:
            InfeasibleError: HiGHS did not reach an optimum (the check beforehand passed).
        """
        highs = self.highs()
        highs.run()
        status = highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise InfeasibleError(f"HiGHS returned {highs.modelStatusToString(status)} "
                                  f"{where}; {fix}", "solver")
        return highs
