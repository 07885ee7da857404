"""Env-step and simulator throughput on the video pipeline, bursty pattern, and the LLM
replica simulator.

    python benchmarks/env_step.py [--mlenergy DIR]

Prints the fluid backend's time per 10-second interval (backend alone and a whole env
step), the whole env step through ``gymnasium.make`` against CartPole-v1's in the same run,
the request-level simulator's simulated requests per second, the continuous-batching
simulator's (`envs.serving.continuous_batching`) on Llama-3.1-8B on one H100 at cap 256
(ML.ENERGY v3, read from ``--mlenergy``) at 90 % of its saturated request rate, and peak
RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402

import envs  # noqa: E402, F401
from energy.mlenergy.curves import llm_curve  # noqa: E402
from energy.mlenergy.files import read_model_file  # noqa: E402
from envs.backends.requests import RequestBackend  # noqa: E402
from envs.config.cli import command_line  # noqa: E402
from envs.model import perf  # noqa: E402
from envs.serving.continuous_batching import serve_replica  # noqa: E402

MLENERGY = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlenergy" / "v3" / "models"
LLAMA = "meta-llama__Llama-3.1-8B-Instruct__lm-arena-chat.json"


def median_time(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples))


def made_step_us(env_id: str, steps: int, **kwargs: object) -> float:
    """Median time of one ``env.step`` (random actions) through ``gymnasium.make``."""
    env = gymnasium.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]

    def run() -> None:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()

    return median_time(run, 7) / steps * 1e6


def llm_requests_per_s(models_dir: Path) -> float:
    """Simulated requests per second of one replica at cap 256, 90 % of saturation."""
    curve = llm_curve(read_model_file(models_dir / LLAMA), "H100", 1, 75.0)
    rng = np.random.default_rng(0)
    n = 2_000_000
    tokens = rng.integers(2, 780, n).astype(float)  # mean about 390, as the measured one
    rate = 0.9 * curve.tokens_per_s(curve.running_limit(256)) / tokens.mean()
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    serve_replica(curve, 256, arrivals[:1000], tokens[:1000])  # compile / warm up
    elapsed = median_time(lambda: serve_replica(curve, 256, arrivals, tokens), 3)
    run = serve_replica(curve, 256, arrivals, tokens)
    print(f"continuous batching: Llama-3.1-8B, 1 x H100, cap 256 at {rate:.1f} req/s, mean "
          f"{run.mean_running:.0f} running; {n} requests in {elapsed:.2f} s -> "
          f"{n / elapsed / 1e6:.2f} M simulated requests/s (one core)")
    return n / elapsed


@command_line("python benchmarks/env_step.py")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python benchmarks/env_step.py", description=__doc__)
    parser.add_argument("--mlenergy", type=Path, default=MLENERGY,
                        help="ML.ENERGY v3 models/ folder (default: ../shared's)")
    args = parser.parse_args(argv)
    env = gymnasium.make("ipa/Pipeline-v2", pipeline="video", workload="bursty",
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
    llm_per_s = llm_requests_per_s(args.mlenergy)
    made_us = made_step_us("ipa/Pipeline-v2", 256, pipeline="video", workload="bursty",
                           backend="fluid")
    cartpole_us = made_step_us("CartPole-v1", 2048)
    print(f"gymnasium.make: ipa/Pipeline-v2 (video, fluid) {made_us:.1f} us per step, "
          f"CartPole-v1 {cartpole_us:.2f} us per step, same run")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fluid_us_per_step={fluid_us:.2f}")
    print(f"env_step_us={env_step_us:.2f}")
    print(f"requests_per_s={requests_per_s:.0f}")
    print(f"llm_cap256_requests_per_s={llm_per_s:.0f}")
    print(f"env_step_over_cartpole={made_us / cartpole_us:.2f}")
    print(f"peak_rss_mb={peak_rss_mb:.1f}")


if __name__ == "__main__":
    sys.exit(main())
