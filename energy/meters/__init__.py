"""Energy meters: RAPL, NVML, Zeus and an explicit TDP estimator behind one ``Meter`` API."""

from energy.meters.estimator import TdpEstimator
from energy.meters.factory import METERS, make_meter
from energy.meters.integrator import PowerIntegrator
from energy.meters.nvml import NvmlMeter
from energy.meters.rapl import RaplMeter, RaplZone
from energy.meters.zeus_meter import ZeusMeter
from envs.metering.meter import Meter

__all__ = [
    "METERS",
    "Meter",
    "NvmlMeter",
    "PowerIntegrator",
    "RaplMeter",
    "RaplZone",
    "TdpEstimator",
    "ZeusMeter",
    "make_meter",
]
