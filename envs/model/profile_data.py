"""Measured data with its provenance: a `Source` says where a number came from, a
`ProfileRow` is one operating point of a model variant, a `Profile` all rows of one variant.

Profiles are dense after loading (`envs.model.densify`): for every profiled core count the
latency and energy of every integer batch size from 1 to the largest measured one is
available, and rows filled in are marked ``interpolated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from envs.config.errors import ProfileError

FileSourceKind = Literal["measured", "calibrated", "cited", "assumed", "estimated"]
"""The kinds a profile file may give a source (``interpolated`` is the loader's own)."""
SourceKind = Literal[FileSourceKind, "interpolated"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
FILE_SOURCE_KINDS: tuple[str, ...] = get_args(FileSourceKind)


@dataclass(frozen=True)
class Source:
    """Where a number came from.

    Attributes:
        id: Short key that rows refer to.
        kind: ``measured`` (on named hardware with a named meter), ``calibrated`` (fitted
            on named data, with its error), ``cited`` (from a publication), ``assumed``
            (a stated value with its reason; results report its sensitivity),
            ``estimated`` (by a named method) or ``interpolated``.
        description: Hardware, meter, software versions, method or citation.
    """

    id: str
    kind: SourceKind
    description: str


@dataclass(frozen=True)
class ProfileRow:
    """One measured (or interpolated) operating point of a model variant.

    ``cores`` is the number of devices one replica holds: CPU cores or GPUs (tensor
    parallel), as the pipeline's `Hardware.device` says. ``energy_per_batch_j`` is the
    dynamic energy of one batch: the energy above the idle power of the devices
    allocated to the replica, spent while it computes the batch.
    """

    batch: int
    cores: int
    latency_mean_ms: float
    latency_p99_ms: float
    energy_per_batch_j: float
    latency_source: str
    energy_source: str


@dataclass(frozen=True)
class Profile:
    """All rows of one variant, indexed by (batch, cores)."""

    rows: tuple[ProfileRow, ...]
    sources: Mapping[str, Source]
    _index: dict[tuple[int, int], ProfileRow] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {(r.batch, r.cores): r for r in self.rows}
        object.__setattr__(self, "_index", index)

    def row(self, batch: int, cores: int) -> ProfileRow:
        """The row for ``batch`` at ``cores``.

        Args:
            batch: Batch size.
            cores: Cores (or GPUs) of one replica.

        Returns:
            The row (measured or filled in at load time).

        Raises:
            ProfileError: No such row, naming the profiled pairs.
        """
        try:
            return self._index[(batch, cores)]
        except KeyError:
            have = sorted(self._index)
            raise ProfileError(
                f"no profile row for batch={batch}, cores={cores}; profiled (batch, cores) "
                f"pairs: {have}. Profile this point (python -m energy.profile) or choose "
                "a profiled batch size / core count."
            ) from None

    def has(self, batch: int, cores: int) -> bool:
        """Whether a row for ``batch`` at ``cores`` exists.

        Args:
            batch: Batch size.
            cores: Cores (or GPUs) of one replica.

        Returns:
            True when it does.
        """
        return (batch, cores) in self._index

    @property
    def core_counts(self) -> tuple[int, ...]:
        """The profiled core counts, ascending."""
        return tuple(sorted({r.cores for r in self.rows}))

    def measured_batches(self, cores: int) -> tuple[int, ...]:
        """Batch sizes at ``cores`` whose latency was measured or cited, not interpolated.

        Args:
            cores: Cores (or GPUs) of one replica.

        Returns:
            The batch sizes, ascending.
        """
        return tuple(
            sorted(
                r.batch
                for r in self.rows
                if r.cores == cores and self.sources[r.latency_source].kind != "interpolated"
            )
        )

    def max_batch(self, cores: int) -> int:
        """The largest batch size with a row at ``cores``.

        Args:
            cores: Cores (or GPUs) of one replica.

        Returns:
            The batch size.
        """
        return max(r.batch for r in self.rows if r.cores == cores)

    @property
    def energy_kinds(self) -> frozenset[str]:
        """Provenance kinds of the rows' dynamic energy (``interpolated`` excluded)."""
        kinds = {self.sources[r.energy_source].kind for r in self.rows}
        return frozenset(kinds - {"interpolated"})
