"""The age of the oldest request waiting at a stage when an interval ends (what the
observation shows a policy, `envs.observation`), in the fluid model's terms.

The request-level simulator knows every queued request's arrival at the stage, so its age
is exact there (`RequestBackend`). The fluid queues of `FluidBackend` (and the batched env,
which compiles this function) serve in arrival order, so the queue left at the end is the
newest inflow: walking back from the interval's end over the stage's per-second inflow, the
oldest queued request arrived where the walked inflow first covers the queue, uniformly
within its second. A queue larger than the interval's whole inflow also holds older
requests; its age is then bounded above by the interval plus the age reported at the
interval before (the oldest of that queue, which FIFO serves first).
"""

from __future__ import annotations

from collections.abc import Sequence


def fluid_oldest_wait_s(inflow: Sequence[float], queue: float, previous_s: float) -> float:
    """Seconds the oldest request of a fluid FIFO queue has waited at the interval's end.

    Args:
        inflow: Requests that reached the stage in each second of the interval (a list, or
            an array in the batched env's compiled copy).
        queue: Requests waiting at its end.
        previous_s: What this function returned for the stage at the interval before (0 at
            the first).

    Returns:
        The age in seconds (0 for an empty queue).
    """
    if queue <= 0.0:
        return 0.0
    left = queue
    n = len(inflow)
    for j in range(n - 1, -1, -1):
        if inflow[j] >= left:
            return (n - 1 - j) + left / inflow[j]
        left -= inflow[j]
    return n + previous_s
