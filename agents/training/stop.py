"""A request to stop training at the next env step, with a checkpoint.

``train.py``'s SIGINT/SIGTERM handler sets it instead of raising where the signal lands
(inside a numba simulator kernel an exception left the run without a checkpoint);
`agents.training.callbacks.TrainingCallback` ends training at its next step. A second signal while
the request is pending raises `KeyboardInterrupt` at once.
"""

from __future__ import annotations

import threading

__all__ = ["STOP_REQUESTED", "request_stop"]

STOP_REQUESTED = threading.Event()


def request_stop(signum: int, frame: object) -> None:
    """Signal handler: ask training to stop; on a second signal, interrupt at once.

    Args:
        signum: The signal number.
        frame: The interrupted frame (unused).

    Raises:
        KeyboardInterrupt: A stop was already requested.
    """
    if STOP_REQUESTED.is_set():
        raise KeyboardInterrupt
    STOP_REQUESTED.set()
