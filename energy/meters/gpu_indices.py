"""The GPU indices a GPU meter reads, checked against the devices its library sees."""

from __future__ import annotations

from collections.abc import Sequence

from energy.errors import MeterUnavailableError


def checked_gpu_indices(requested: Sequence[int] | None, count: int, seen_by: str) -> list[int]:
    """The GPUs to read: all of them, or the requested ones if they exist.

    Args:
        requested: GPU indices asked for; None means every visible GPU.
        count: GPUs the vendor library sees.
        seen_by: The library's name for the message (``NVML``, ``zeus``).

    Returns:
        The indices, in the order given.

    Raises:
        MeterUnavailableError: An index out of range, or an empty list.
    """
    indices = list(range(count)) if requested is None else [int(i) for i in requested]
    bad = [i for i in indices if not 0 <= i < count]
    if bad or not indices:
        raise MeterUnavailableError(
            f"GPU indices {bad or indices} do not exist; {seen_by} sees {count} GPU(s) "
            f"(0..{count - 1}); pass gpu_indices within that range"
        )
    return indices
