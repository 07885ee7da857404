"""The training progress bar (rich, on stderr): steps, steps/s, ETA, latest evaluation."""

from __future__ import annotations

import time

__all__ = ["Progress"]


class Progress:
    """A rich progress bar on stderr: steps, steps/s, ETA and the latest evaluation."""

    def __init__(self, total: int, start: int, enabled: bool = True) -> None:
        """Start the bar (nothing is drawn when ``enabled`` is False).

        Args:
            total: The run's total env steps.
            start: The steps already done (a resumed run's).
            enabled: Whether to draw the bar at all.
        """
        self._bar = None
        self._task = None
        self._last = 0.0
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} steps/s"), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[eval]}"),
            console=Console(stderr=True), refresh_per_second=4,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=total, completed=start, rate="-",
                                        eval="")
        self._t0, self._s0 = time.monotonic(), start

    def update(self, step: int, force: bool = False) -> None:
        """Move the bar to ``step`` (throttled to a few updates a second).

        Args:
            step: The env steps done so far.
            force: Redraw even within the throttle interval.
        """
        if self._bar is None:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        rate = (step - self._s0) / max(now - self._t0, 1e-9)
        self._bar.update(self._task, completed=step, rate=f"{rate:,.0f}")

    def show_eval(self, text: str) -> None:
        """Show the latest evaluation next to the bar.

        Args:
            text: The evaluation's one-line summary.
        """
        if self._bar is not None:
            self._bar.update(self._task, eval=text)

    def close(self) -> None:
        """Stop redrawing (the last state stays on screen)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
