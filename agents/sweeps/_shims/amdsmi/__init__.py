"""Stand-in for ``amdsmi`` in the processes of a local Ray (see `agents.sweeps.sweep`).

amdsmi 7.0.2 (a dependency of zeus) raises ``KeyError: 'libamd_smi.so'`` on import where
the ROCm library is absent; Ray imports it at start-up and only expects ImportError, so
every Ray process would die. Where the real import fails that way, `agents.sweeps.sweep` puts the
folder above this one first on the Ray processes' ``PYTHONPATH``: the import then raises
the ImportError Ray and zeus handle (no AMD GPU, which is the truth on such a machine).
"""

raise ImportError("amdsmi is unavailable here: libamd_smi.so was not found (stand-in "
                  "from agents/sweeps/_shims)")
