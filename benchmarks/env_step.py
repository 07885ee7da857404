"""Env-step and simulator throughput on the video pipeline, bursty pattern.

    python benchmarks/env_step.py

Prints the fluid backend's time per 10-second interval (backend alone and a whole env
step), the request-level simulator's simulated requests per second, and peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402

import envs  # noqa: E402, F401
from envs.backends.requests import RequestBackend  # noqa: E402
from envs.config.cli import command_line  # noqa: E402
from envs.model import perf  # noqa: E402


def median_time(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples))


@command_line("python benchmarks/env_step.py")
def main() -> None:
    env = gymnasium.make("ipa/Pipeline-v1", pipeline="video", workload="bursty",
                         backend="fluid").unwrapped
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(256)]
    steps = 0

    def run_steps() -> None:
        nonlocal steps
        for a in actions:
            _, _, _, truncated, _ = env.step(a)
            steps += 1
            if truncated:
                env.reset(seed=steps)

    env_step_us = median_time(run_steps, 7) / len(actions) * 1e6
    backend = env.backend
    backend.reset(env.decode(actions[0]))
    window = env.trace[:10]

    def run_backend() -> None:
        for a in actions:
            backend.apply(env.decode(a))
            backend.run_interval(window)

    fluid_us = median_time(run_backend, 7) / len(actions) * 1e6
    print(f"fluid backend: {fluid_us:.1f} us per 10-s interval (apply + run_interval); "
          f"whole env step incl. observation and reward: {env_step_us:.1f} us")

    sim = RequestBackend(env.pipeline, env.settings)
    nvec = env.action_space.nvec.reshape(-1, 3)
    cheapest_big = np.concatenate([[0, n_batch - 1, n_rep - 1] for _, n_batch, n_rep in nvec])
    decision = env.decode(cheapest_big)  # cheapest variants, largest batch, most replicas
    capacity = perf.decision_throughput_rps(env.pipeline, decision)
    rates = np.full(10, np.floor(0.8 * capacity))  # 80 % load: every request is served
    sim.reset(decision, seed=0)
    sim.run_interval(rates)  # compile / warm up
    intervals = 300

    def run_requests() -> None:
        for _ in range(intervals):
            sim.run_interval(rates)

    elapsed = median_time(run_requests, 3)
    requests = int(rates.sum()) * intervals
    requests_per_s = requests / elapsed
    stats = sim.run_interval(rates)
    print(f"request-level: {decision.describe(env.pipeline)} at {rates[0]:.0f} req/s "
          f"(dropped {stats.dropped}/{stats.arrived}); {requests} requests in "
          f"{elapsed:.2f} s -> {requests_per_s / 1e6:.2f} M simulated requests/s (one core)")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fluid_us_per_step={fluid_us:.2f}")
    print(f"env_step_us={env_step_us:.2f}")
    print(f"requests_per_s={requests_per_s:.0f}")
    print(f"peak_rss_mb={peak_rss_mb:.1f}")


if __name__ == "__main__":
    sys.exit(main())
