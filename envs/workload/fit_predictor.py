"""Train IPA's LSTM load predictor on a trace prefix and save it for the env.

    python -m envs.workload.fit_predictor --trace workload.txt --damping 8 --days 14 \
        --out predictors/lstm_twitter.pt
    python train.py env.predictor=lstm env.predictor_path=predictors/lstm_twitter.pt

IPA trained on the first 14 days of the damped Twitter trace with zeros removed, 12 lags
of the per-10-second maximum, predicting the maximum of the next 20 seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from envs.config.cli import command_line, positive_float, positive_int
from envs.workload.day_split import DAY_S
from envs.workload.lstm_predictor import LSTMPredictor
from envs.workload.synthetic import synthetic_trace
from envs.workload.traces import load_trace


@command_line("python -m envs.workload.fit_predictor")
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments (None: ``sys.argv[1:]``).

    Returns:
        The exit code (2: a package error, reported in one line).
    """
    parser = argparse.ArgumentParser(prog="python -m envs.workload.fit_predictor",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--trace", type=Path, help="per-second rate trace")
    source.add_argument("--pattern", help="a synthetic pattern instead of a trace")
    parser.add_argument("--damping", type=positive_float, default=1.0)
    parser.add_argument("--days", type=positive_float, default=14.0, help="prefix to train on")
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-samples", type=positive_int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    prefix_s = int(args.days * DAY_S)
    trace = (load_trace(args.trace, args.damping) if args.trace is not None
             else synthetic_trace(args.pattern, prefix_s, args.seed))
    predictor = LSTMPredictor()
    losses = predictor.fit(trace, epochs=args.epochs, seed=args.seed, prefix_s=prefix_s,
                           max_samples=args.max_samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    predictor.save(args.out)
    print(f"trained on {min(prefix_s, len(trace))} s, loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
