"""Energy of live replicas estimated from their CPU time, for machines without counters.

The model is the simulators' (`envs.model.node_power.energy_parts`): the static power of the nodes
the allocated cores keep powered, the idle power of every allocated core for the time it is
allocated, plus a dynamic power for every second a core is busy::

    energy_j = node_static_w * powered nodes * seconds
             + device_idle_w * allocated_core_s + dynamic_w_per_core * busy_cpu_s

(powered nodes for the interval's mean allocation, `envs.model.node_power.powered_nodes`).

``busy_cpu_s`` is the user + system CPU time of the replica processes (all their threads),
read from ``/proc/<pid>/stat`` while they run and from ``wait4``'s resource usage once they
have exited. The default ``dynamic_w_per_core`` of 3 W is what the profiler's TDP meter
charges per busy core with its defaults (4 W per core at full load minus 1 W idle; assumed,
as that meter's figures are), so an estimate here and a profile measured with that meter
use the same figures. Every value
this module produces is an estimate (``energy_estimated=True``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from envs.config.errors import ConfigError
from envs.model import node_power
from envs.model.fleet import Fleet

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (None when it is gone).

    Reads fields 14 and 15 (``utime``, ``stime``) of ``/proc/<pid>/stat``, in clock ticks;
    the fields are counted after the command name, which may itself hold spaces.

    Args:
        pid: The process id.

    Returns:
        Its CPU seconds, or None if ``/proc`` has no figure.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    try:
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class CpuTimeEnergy:
    """The utilisation-based energy estimate.

    Attributes:
        fleet: The profile's fleet: one pool, the machine the live pipeline runs on.
        dynamic_w_per_core: Extra power of one fully busy core.
    """

    fleet: Fleet
    dynamic_w_per_core: float = 3.0

    def __post_init__(self) -> None:
        if len(self.fleet.pools) != 1:
            raise ConfigError("the live pipeline runs on one machine: give it a profile with "
                              f"one device pool, not {len(self.fleet.pools)}")
        if self.dynamic_w_per_core < 0:
            raise ValueError(f"dynamic_w_per_core must be >= 0, got {self.dynamic_w_per_core}")

    def energy_parts(self, seconds: float, allocated_core_s: float, busy_cpu_s: float
                     ) -> node_power.EnergyParts:
        """Energy of an interval of ``seconds`` with ``allocated_core_s`` core-seconds
        allocated, of which ``busy_cpu_s`` were busy.

        Args:
            seconds: Length of the interval.
            allocated_core_s: Core-seconds the replicas held.
            busy_cpu_s: CPU seconds they used.

        Returns:
            Estimated static, idle and dynamic joules (the power model's split).
        """
        mean_cores = allocated_core_s / seconds if seconds > 0 else 0.0
        return node_power.energy_parts(self.fleet, [(seconds, (mean_cores,))],
                                  self.dynamic_w_per_core * max(busy_cpu_s, 0.0))

    def describe(self) -> str:
        """The ``energy_method`` of the estimate.

        Returns:
            Its description with the figures used.
        """
        pool = self.fleet.pools[0]
        return (f"estimated: {pool.node_static_w:g} W per powered node + "
                f"{pool.device_idle_w:g} W per device of a powered node + "
                f"{pool.allocated_w:g} W per allocated core + "
                f"{self.dynamic_w_per_core:g} W per busy core (replica CPU time from /proc)")
