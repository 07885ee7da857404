"""Torch model builders with random weights (torchvision and transformers configs) for
latency and energy measurement: the catalog the profiler and the live stage servers use.

May import: torch, torchvision, transformers and the standard library; nothing of this
package's siblings (it is the lowest layer, below ``envs``).
"""
