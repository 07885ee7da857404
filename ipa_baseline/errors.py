"""`InfeasibleError`: the ILP's own error, raised before or by the solver."""

from __future__ import annotations

from envs.config.errors import IpaEnergyError

__all__ = ["InfeasibleError"]


class InfeasibleError(IpaEnergyError, RuntimeError):
    """No decision meets IPA's constraints; the message names the binding constraint.

    Attributes:
        constraint: ``throughput`` (a stage cannot reach the rate within its replicas),
            ``latency`` (the SLA is below the fastest possible end-to-end latency) or
            ``solver`` (the solver reported infeasibility the diagnosis did not predict).
        stage: Name of the stage that binds, for ``throughput``.
    """

    def __init__(self, message: str, constraint: str, stage: str | None = None) -> None:
        """Create the error.

        Args:
            message: One line naming the binding constraint and the fix.
            constraint: ``throughput``, ``latency`` or ``solver``.
            stage: The binding stage's name (``throughput``).
        """
        super().__init__(message)
        self.constraint = constraint
        self.stage = stage
