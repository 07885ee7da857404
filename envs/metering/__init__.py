"""The meter protocol: `meter.Meter` (windows of energy over a named domain) and
`reading.EnergyReading` (what a window returns). The implementations (RAPL, NVML, Zeus,
...) live in the ``energy`` package, above ``envs``.

May import: ``envs.config``.
"""
