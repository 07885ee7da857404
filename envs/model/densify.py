"""Rows a profile did not measure, filled in once at load time and marked as such."""

from __future__ import annotations

from envs.model.profile_data import ProfileRow, Source

INTERPOLATED = Source(
    "interpolated", "interpolated",
    "linear interpolation in batch size between the two nearest measured rows, at load time",
)

BELOW_MIN_BATCH = Source(
    "below_min_batch", "interpolated",
    "below the smallest measured batch size: that batch's latency and energy (a partial "
    "batch is taken to cost the full batch's time and energy), at load time",
)
RESERVED_SOURCES = (INTERPOLATED, BELOW_MIN_BATCH)


def densify_rows(rows: list[ProfileRow]) -> list[ProfileRow]:
    """Add interpolated rows for every missing batch size between measured ones, and
    rows below the smallest measured batch that repeat it.

    Args:
        rows: The measured rows of one variant.

    Returns:
        Measured and filled rows, sorted by (cores, batch).
    """
    dense = list(rows)
    for cores in sorted({r.cores for r in rows}):
        measured = sorted((r for r in rows if r.cores == cores), key=lambda r: r.batch)
        first = measured[0]
        dense.extend(ProfileRow(b, cores, first.latency_mean_ms, first.latency_p99_ms,
                                first.energy_per_batch_j, BELOW_MIN_BATCH.id,
                                BELOW_MIN_BATCH.id) for b in range(1, first.batch))
        for lo, hi in zip(measured, measured[1:], strict=False):
            for b in range(lo.batch + 1, hi.batch):
                w = (b - lo.batch) / (hi.batch - lo.batch)

                def mix(a: float, c: float, w: float = w) -> float:
                    return a + w * (c - a)

                dense.append(ProfileRow(
                    b, cores, mix(lo.latency_mean_ms, hi.latency_mean_ms),
                    mix(lo.latency_p99_ms, hi.latency_p99_ms),
                    mix(lo.energy_per_batch_j, hi.energy_per_batch_j),
                    INTERPOLATED.id, INTERPOLATED.id,
                ))
    return sorted(dense, key=lambda r: (r.cores, r.batch))
