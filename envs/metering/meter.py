"""The ``Meter`` interface: named measurement windows that may overlap."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

from envs.config.errors import MeterWindowError
from envs.metering.reading import EnergyReading

__all__ = ["Meter"]

_OPENING = object()  # placeholder that reserves a key while ``_open`` runs


class Meter(ABC):
    """Measures energy over keyed windows.

    ``begin(key)`` opens a window and ``end(key)`` closes it and returns its
    :class:`~envs.metering.reading.EnergyReading`. Any number of windows may be open at once
    (e.g. one per episode and one per step); beginning an open key or ending an unknown key raises
    :class:`~energy.errors.MeterWindowError`. Window bookkeeping is thread-safe.

    Subclasses implement ``_open`` (take the starting state, e.g. a counter snapshot) and
    ``_close`` (turn the starting state into a reading), and may override ``close`` to release
    resources. A meter is also a context manager that calls ``close`` on exit.
    """

    #: Short name used by :func:`~energy.meters.factory.make_meter` and in messages.
    name: str = "meter"

    def __init__(self) -> None:
        self._windows: dict[str, Any] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _open(self, key: str) -> Any:
        """Return the starting state of a new window."""

    @abstractmethod
    def _close(self, key: str, state: Any) -> EnergyReading:
        """Return the reading of a window given its starting state."""

    def _discard(self, key: str, state: Any) -> None:  # noqa: B027 - optional hook
        """Release what ``_open`` acquired for a cancelled window (default: nothing)."""

    def begin(self, key: str) -> None:
        """Open the window ``key``.

        Args:
            key: Any string not currently open on this meter.

        Raises:
            MeterWindowError: ``key`` is already open.
        """
        with self._lock:
            if key in self._windows:
                raise MeterWindowError(
                    f"{self.name} meter: window {key!r} is already open; end or cancel it first, "
                    "or use a distinct key per concurrent window"
                )
            self._windows[key] = _OPENING
        try:
            state = self._open(key)
        except BaseException:
            with self._lock:
                self._windows.pop(key, None)
            raise
        with self._lock:
            self._windows[key] = state

    def end(self, key: str) -> EnergyReading:
        """Close the window ``key`` and return the energy consumed since ``begin(key)``.

        Args:
            key: A window opened with :meth:`begin`.

        Returns:
            The reading of the window.

        Raises:
            MeterWindowError: ``key`` was never begun, or was already ended or cancelled.
        """
        state = self._pop(key, "end")
        return self._close(key, state)

    def cancel(self, key: str) -> None:
        """Drop the open window ``key`` without producing a reading.

        Args:
            key: The window's key.

        Raises:
            MeterWindowError: ``key`` is not open.
        """
        self._discard(key, self._pop(key, "cancel"))

    @property
    def open_keys(self) -> tuple[str, ...]:
        """Keys of the windows currently open, in the order they were begun."""
        with self._lock:
            return tuple(self._windows)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release background threads or library handles (default: nothing)."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _pop(self, key: str, verb: str) -> Any:
        with self._lock:
            if self._windows.get(key, _OPENING) is _OPENING:
                open_keys = ", ".join(repr(k) for k in self._windows) or "none"
                raise MeterWindowError(
                    f"{self.name} meter: cannot {verb} window {key!r}, it was never begun "
                    f"(or was already ended); open windows: {open_keys}. Call begin({key!r}) "
                    "first"
                )
            return self._windows.pop(key)
