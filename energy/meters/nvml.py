"""NVIDIA GPU energy through NVML (the ``pynvml`` module of the nvidia-ml-py package)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from energy.errors import MeterReadError, MeterUnavailableError
from energy.meters.gpu_indices import checked_gpu_indices
from energy.meters.integrator import PowerIntegrator
from envs.metering.meter import Meter
from envs.metering.reading import EnergyReading

__all__ = ["NvmlMeter"]

_FIX = "run on a machine with an NVIDIA GPU and driver, or choose --meter rapl/tdp"


def _load_pynvml() -> Any:
    try:
        import pynvml
    except ImportError as err:
        raise MeterUnavailableError(
            f"the pynvml module is missing ({err}); `pip install nvidia-ml-py`, or choose "
            "--meter rapl/tdp"
        ) from err
    return pynvml


class NvmlMeter(Meter):
    """Measures GPU energy with NVML.

    GPUs of the Volta generation or newer expose a millijoule energy counter
    (``nvmlDeviceGetTotalEnergyConsumption``), and a window is the difference of two reads
    (source ``"nvml:counter"``). For a GPU where that call raises ``NVMLError_NotSupported`` the
    meter samples ``nvmlDeviceGetPowerUsage`` on a background thread every ``sample_period_s``
    and integrates it with the trapezoid rule (source ``"nvml:integrated"``; method says
    "integrated power samples"). The counter updates every few tens of milliseconds, so very
    short windows may read 0 J.

    Args:
        gpu_indices: NVML device indices to measure (NVML order, which ignores
            ``CUDA_VISIBLE_DEVICES``); None means every GPU.
        sample_period_s: Sampling period of the fallback integrator.

    Raises:
        MeterUnavailableError: nvidia-ml-py is not installed, the NVML library or driver is
            missing, there is no GPU, or an index does not exist.
    """

    name = "nvml"

    def __init__(
        self, gpu_indices: Sequence[int] | None = None, sample_period_s: float = 0.05
    ) -> None:
        super().__init__()
        self._nvml = nvml = _load_pynvml()
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            raise MeterUnavailableError(
                f"no NVIDIA GPU found via NVML (nvmlInit failed: {err}); {_FIX}"
            ) from err
        self._initialised = True
        self._integrator: PowerIntegrator | None = None
        try:
            count = nvml.nvmlDeviceGetCount()
            if count == 0:
                raise MeterUnavailableError(
                    f"NVML reports no GPU (nvmlDeviceGetCount() == 0); {_FIX}"
                )
            indices = checked_gpu_indices(gpu_indices, count, "NVML")
            self.gpu_indices = indices
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            self._has_counter = [self._supports_counter(h) for h in self._handles]
            self._sampled = [i for i, ok in enumerate(self._has_counter) if not ok]
            if self._sampled:
                self._integrator = PowerIntegrator(self._read_sampled_power, sample_period_s)
        except MeterUnavailableError:
            self.close()
            raise
        except nvml.NVMLError as err:
            self.close()
            raise MeterUnavailableError(f"NVML failed while opening GPUs: {err}; {_FIX}") from err

    def _supports_counter(self, handle: Any) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except self._nvml.NVMLError_NotSupported:
            return False
        return True

    def _read_sampled_power(self) -> list[float]:
        get_power = self._nvml.nvmlDeviceGetPowerUsage
        return [get_power(self._handles[i]) / 1000.0 for i in self._sampled]

    @property
    def source(self) -> str:
        """``"nvml:counter"``, ``"nvml:integrated"`` or ``"nvml:counter+integrated"``."""
        if not self._sampled:
            return "nvml:counter"
        if len(self._sampled) == len(self._handles):
            return "nvml:integrated"
        return "nvml:counter+integrated"

    @property
    def method(self) -> str:
        """How the joules are obtained, naming both mechanisms when GPUs differ."""
        parts = []
        counted = [g for g, ok in zip(self.gpu_indices, self._has_counter, strict=True) if ok]
        if counted:
            parts.append(f"nvmlDeviceGetTotalEnergyConsumption counter difference (GPUs {counted})")
        if self._sampled and self._integrator is not None:
            sampled = [self.gpu_indices[i] for i in self._sampled]
            parts.append(
                "integrated power samples (trapezoid over nvmlDeviceGetPowerUsage every "
                f"{self._integrator.period_s * 1000:g} ms, GPUs {sampled})"
            )
        return "; ".join(parts)

    def _snapshot(self) -> tuple[float, list[float]]:
        energy = [0.0] * len(self._handles)
        try:
            if self._integrator is not None:
                _, cum = self._integrator.snapshot()
                for slot, joules in zip(self._sampled, cum, strict=True):
                    energy[slot] = joules
            now = time.perf_counter()
            for slot, handle in enumerate(self._handles):
                if self._has_counter[slot]:
                    energy[slot] = self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
        except self._nvml.NVMLError as err:
            raise MeterReadError(f"NVML read failed during a window: {err}") from err
        return now, energy

    def _open(self, key: str) -> tuple[float, list[float]]:
        return self._snapshot()

    def _close(self, key: str, state: tuple[float, list[float]]) -> EnergyReading:
        t1, e1 = self._snapshot()
        t0, e0 = state
        components = {f"gpu{g}": b - a for g, a, b in zip(self.gpu_indices, e0, e1, strict=True)}
        return EnergyReading(
            seconds=t1 - t0,
            source=self.source,
            estimated=False,
            method=self.method,
            gpu_j=sum(components.values()),
            components=components,
        )

    def close(self) -> None:
        """Stop the sampling thread and shut NVML down (idempotent)."""
        if self._integrator is not None:
            self._integrator.stop()
            self._integrator = None
        if getattr(self, "_initialised", False):
            self._initialised = False
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
