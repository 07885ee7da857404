"""GPU (and optionally CPU) energy through ``zeus.monitor.ZeusMonitor``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from energy.errors import MeterReadError, MeterUnavailableError
from energy.meters.gpu_indices import checked_gpu_indices
from envs.metering.meter import Meter
from envs.metering.reading import EnergyReading

__all__ = ["ZeusMeter"]

_FIX = "run on a machine with an NVIDIA or AMD GPU, or choose --meter rapl/tdp"


class ZeusMeter(Meter):
    """Wraps a ``ZeusMonitor``; each key is a Zeus measurement window.

    Zeus itself uses the NVML energy counter where the GPU has one and polls power otherwise.
    ``ZeusMonitor`` silently monitors zero GPUs on a machine without any, so this class checks
    for GPUs first and raises instead; a window that comes back without energy for every GPU
    raises :class:`~energy.errors.MeterReadError` rather than reporting zero.

    Args:
        gpu_indices: CUDA device indices (after ``CUDA_VISIBLE_DEVICES``); None means all.
        include_cpu: Also report Zeus's RAPL CPU package/DRAM energy (needs read access to
            ``/sys/class/powercap``); off by default so GPU runs do not need root.
        sync_execution: Let Zeus synchronise CUDA (``torch.cuda.synchronize``) at window edges.

    Raises:
        MeterUnavailableError: zeus is not installed or finds no GPU.
    """

    name = "zeus"

    def __init__(
        self,
        gpu_indices: Sequence[int] | None = None,
        include_cpu: bool = False,
        sync_execution: bool = True,
    ) -> None:
        super().__init__()
        try:
            from zeus.device import get_gpus
            from zeus.device.gpu.common import ZeusGPUInitError
            from zeus.monitor import ZeusMonitor
        except ImportError as err:
            raise MeterUnavailableError(
                f"the zeus package is missing ({err}); `pip install zeus`, or choose "
                "--meter nvml/rapl/tdp"
            ) from err
        try:
            n_gpus = len(get_gpus())
        except ZeusGPUInitError as err:
            raise MeterUnavailableError(f"zeus found no GPU ({err}); {_FIX}") from err
        if n_gpus == 0:
            raise MeterUnavailableError(f"zeus found no GPU (0 devices visible); {_FIX}")
        indices = checked_gpu_indices(gpu_indices, n_gpus, "zeus")
        try:
            self._monitor: Any = ZeusMonitor(
                gpu_indices=indices, cpu_indices=None if include_cpu else []
            )
        except (ValueError, RuntimeError) as err:
            raise MeterUnavailableError(f"ZeusMonitor could not start: {err}; {_FIX}") from err
        self.gpu_indices = indices
        self._sync = sync_execution

    def _open(self, key: str) -> None:
        self._monitor.begin_window(key, sync_execution=self._sync)

    def _discard(self, key: str, state: None) -> None:
        self._monitor.end_window(key, sync_execution=False, cancel=True)

    def _close(self, key: str, state: None) -> EnergyReading:
        m = self._monitor.end_window(key, sync_execution=self._sync)
        gpu = dict(m.gpu_energy or {})
        missing = [i for i in self.gpu_indices if i not in gpu]
        if missing:
            raise MeterReadError(
                f"zeus window {key!r} returned no energy for GPU(s) {missing} "
                f"(got {gpu or 'nothing'}); refusing to report 0 J. Check the GPUs with "
                "`nvidia-smi` and that CUDA_VISIBLE_DEVICES matches gpu_indices"
            )
        components = {f"gpu{i}": float(j) for i, j in gpu.items()}
        cpu = dict(m.cpu_energy or {})
        dram = dict(m.dram_energy or {})
        components |= {f"cpu{i} package": float(j) for i, j in cpu.items()}
        components |= {f"cpu{i} dram": float(j) for i, j in dram.items()}
        return EnergyReading(
            seconds=float(m.time),
            source="zeus",
            estimated=False,
            method="zeus.monitor.ZeusMonitor window (NVML energy counter, or polled power on "
            "pre-Volta GPUs)",
            gpu_j=float(sum(gpu.values())),
            cpu_package_j=float(sum(cpu.values())) if cpu else None,
            dram_j=float(sum(dram.values())) if dram else None,
            components=components,
        )
