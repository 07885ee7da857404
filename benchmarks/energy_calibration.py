"""Calibrate the CPU power model on RAPL: IPA and its baselines on IPA's four real windows.

The target is ipa-ext's whole-package RAPL energy (``ipa_ext_energy/energy_summary.csv``,
perf stat power/energy-pkg) of IPA, FA2-low, FA2-high and RIM-high on IPA's four
Twitter windows. Each run is replayed here: the same policy on the same window over a
profile built from IPA's own CPU profile fragments (Xeon Gold 6126,
`ipa_baseline.fragments`) under IPA's own rules (`ipa_baseline.rules.preset("ipa")`: its
SLA and base-allocation rules, FA2-high = its video-3 configuration, RIM = 3 replicas),
request-level simulator. Each simulated run gives two features, its mean allocated
cores and its mean busy cores (core-seconds of computing batches over the run), and the
power model is

    P_package = node_static_w + device_idle_w x allocated cores + busy_w x busy cores

(a fixed fleet of one measured machine). The three parameters are fitted by
non-negative least squares on the runs of two windows (``--fit``) and validated on the
other two: per held-out run the measured and simulated mean package power, and each
policy's energy relative to IPA's on the same window (measured ratio: mean package power
ratio, since the runs' durations differ by up to 2 %). The fit is written as a
calibration file (``--out``) that `energy.apply_calibration` applies to a shipped CPU
profile.

Reproduce (from the repository root)::

    python benchmarks/energy_calibration.py [--fit steady_low steady_high] [--slice-s 1200]

Ends with ``power_error_median=`` and ``ratio_error_max=`` (held-out runs only). Reads
``../shared/data`` at run time and skips, with the reason, where it is absent.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import gymnasium
import numpy as np
import yaml
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402,F401  (registers the env ids)
from agents.evaluation.episode import run_episode  # noqa: E402
from agents.policies import FA2Policy, IPAPolicy, RIMPolicy  # noqa: E402
from envs.config.cli import command_line  # noqa: E402
from envs.config.errors import ConfigError  # noqa: E402
from envs.model import power  # noqa: E402
from ipa_baseline.fragments import profile_doc, read_fragments  # noqa: E402
from ipa_baseline.ipa_world import write_ipa_profile  # noqa: E402
from ipa_baseline.rules import IpaRules, preset  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WINDOWS = ("bursty", "steady_low", "steady_high", "fluctuating")
POLICIES = ("IPA", "FA2-low", "FA2-high", "RIM-high")
WEIGHTS = {"alpha": 2.0, "beta": 1.0, "gamma": 1e-6}  # IPA's video weights (video-1.yaml)
RULES: IpaRules = preset("ipa", "video")  # ipa-ext ran IPA's own code: its rules apply


def measured_runs(summary: Path) -> dict[tuple[str, str], float]:
    """(window, policy) -> mean package power (W) of the ipa-ext ``energy_logs`` runs."""
    out = {}
    with summary.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["dir"] == "energy_logs" and row["system"] in POLICIES:
                out[(row["workload"], row["system"])] = float(row["pkg_mean_W"])
    missing = [(w, p) for w in WINDOWS for p in POLICIES if (w, p) not in out]
    if missing:
        raise ConfigError(f"{summary}: no energy_logs run for {missing}; the calibration "
                          "needs all 16 (window, policy) runs")
    return out


def make_policy(name: str, env: gymnasium.Env) -> IPAPolicy:
    """IPA or one of its baselines with IPA's rules (FA2-high = IPA's video-3
    configuration, RIM = 3 fixed replicas)."""
    if name == "IPA":
        return IPAPolicy(env, rules=RULES, **WEIGHTS)
    if name == "FA2-low":
        return FA2Policy(env, "low", rules=RULES, **WEIGHTS)
    if name == "FA2-high":
        return FA2Policy(env, "high", rules=RULES, **WEIGHTS)
    return RIMPolicy(env, rules=RULES, **WEIGHTS)


def feature_profile(doc: dict) -> dict:
    """The fragments profile with the power model set to count core-seconds: 1 J per
    allocated core-second (idle part), 1 J per busy core-second (dynamic), no static."""
    doc = yaml.safe_load(yaml.safe_dump(doc))
    doc["pools"][0].update(node_static_w=0.0, device_idle_w=0.0, allocated_w=1.0, always_on=1,
                           sources={"allocated_w": doc["pools"][0]["sources"].get(
                               "allocated_w", "static")})
    for stage in doc["stages"]:
        for variant in stage["variants"]:
            for row in variant["rows"]:
                row[4] = round(power.busy_batch_energy_j(1.0, row[1], row[2]), 6)  # core-s
    return doc


def simulate(profile: Path, window: Path, policy: str, slice_s: int) -> tuple[float, float]:
    """Mean allocated cores and mean busy cores of one policy on one window."""
    env = gymnasium.make("ipa/Pipeline-v2", pipeline=str(profile), workload=str(window),
                         backend="requests", max_replicas=RULES.max_replicas or 24,
                         **{"workload.window_s": slice_s, "workload.warmup_s": 0})
    episode = run_episode(env.unwrapped, make_policy(policy, env.unwrapped), policy,
                          window.stem, 0)
    env.close()
    stats = [s.stats for s in episode.steps]
    seconds = sum(s.seconds for s in stats)
    return sum(s.idle_j for s in stats) / seconds, sum(s.dynamic_j for s in stats) / seconds


Features = dict[tuple[str, str], tuple[float, float]]


def fit(features: Features, measured: dict[tuple[str, str], float],
        windows: Sequence[str]) -> tuple[float, float, float]:
    """Non-negative least squares of (static, idle per allocated core, per busy core)."""
    keys = [k for k in features if k[0] in windows]
    design = np.array([[1.0, *features[k]] for k in keys])
    params, _ = nnls(design, np.array([measured[k] for k in keys]))
    return float(params[0]), float(params[1]), float(params[2])


def held_out_errors(features: Features, measured: dict[tuple[str, str], float],
                    windows: Sequence[str]) -> tuple[float, float]:
    """Median power error and largest ratio error on the windows not in ``windows``."""
    static_w, idle_w, busy_w = fit(features, measured, windows)
    sim = {k: static_w + idle_w * a + busy_w * b for k, (a, b) in features.items()}
    held = [k for k in features if k[0] not in windows]
    power = [abs(sim[k] - measured[k]) / measured[k] for k in held]
    ratio = []
    for w, p in held:
        if p != "IPA":
            truth = measured[(w, p)] / measured[(w, "IPA")]
            ratio.append(abs(sim[(w, p)] / sim[(w, "IPA")] - truth) / truth)
    return float(np.median(power)), float(np.max(ratio))


@command_line("python benchmarks/energy_calibration.py")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", nargs=2, default=["steady_low", "steady_high"],
                        choices=WINDOWS, help="the two windows to fit on")
    parser.add_argument("--slice-s", type=int, default=1200,
                        help="seconds of each window to replay (CI uses a short slice)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=None,
                        help="write the fitted parameters as a calibration YAML file")
    args = parser.parse_args(argv)
    summary = args.data / "ipa" / "ipa_ext_energy" / "energy_summary.csv"
    fragments = args.data / "ipa" / "profile_fragments"
    if not (summary.is_file() and fragments.is_dir()):
        print(f"skipped: reference data not found under {args.data} (needs "
              "ipa/ipa_ext_energy/energy_summary.csv and ipa/profile_fragments/)")
        return
    if args.slice_s <= 0 or args.slice_s % 10:
        raise ConfigError(f"--slice-s must be a positive multiple of 10, got {args.slice_s}")
    measured = measured_runs(summary)
    accuracies = yaml.safe_load((args.data / "ipa" / "accuracies.yaml").read_text())["video"]
    doc, _, _ = profile_doc(read_fragments(fragments), accuracies)
    features: Features = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "ipa_fragments_features.yaml"
        base.write_text(yaml.safe_dump(feature_profile(doc), sort_keys=False))
        profile = write_ipa_profile(base, Path(tmp) / "ipa_fragments_ipa.yaml", RULES)
        for window in WINDOWS:
            trace = args.data / "twitter" / f"window_{window}_damped8.txt"
            for policy in POLICIES:
                features[(window, policy)] = simulate(profile, trace, policy, args.slice_s)
    static_w, idle_w, busy_w = fit(features, measured, args.fit)

    def simulated_w(key: tuple[str, str]) -> float:
        allocated, busy = features[key]
        return static_w + idle_w * allocated + busy_w * busy

    print(f"command: python benchmarks/energy_calibration.py --fit {' '.join(args.fit)} "
          f"--slice-s {args.slice_s}")
    print(f"fit on {args.fit}: node_static_w={static_w:.2f} device_idle_w={idle_w:.3f} "
          f"busy_w_per_core={busy_w:.3f}")
    print(f"{'window':12s} {'policy':9s} {'set':5s} {'alloc':>6s} {'busy':>6s} "
          f"{'meas W':>7s} {'sim W':>7s} {'err':>6s} {'meas/IPA':>8s} {'sim/IPA':>8s}")
    power_errors, ratio_errors = [], []
    for window in WINDOWS:
        held_out = window not in args.fit
        for policy in POLICIES:
            key = (window, policy)
            meas, sim = measured[key], simulated_w(key)
            ratio_meas = meas / measured[(window, "IPA")]
            ratio_sim = sim / simulated_w((window, "IPA"))
            err = (sim - meas) / meas
            if held_out:
                power_errors.append(abs(err))
                if policy != "IPA":
                    ratio_errors.append(abs(ratio_sim - ratio_meas) / ratio_meas)
            print(f"{window:12s} {policy:9s} {'test' if held_out else 'fit':5s} "
                  f"{features[key][0]:6.2f} {features[key][1]:6.2f} {meas:7.2f} {sim:7.2f} "
                  f"{100 * err:5.1f}% {ratio_meas:8.3f} {ratio_sim:8.3f}")
    print("cross-validation, every pair of fit windows (held-out median power error, "
          "largest ratio error):")
    meeting = 0
    for pair in itertools.combinations(WINDOWS, 2):
        p_err, r_err = held_out_errors(features, measured, pair)
        meeting += p_err <= 0.05 and r_err <= 0.10
        print(f"  fit {pair[0]:11s} + {pair[1]:11s}: power {100 * p_err:5.1f} %, "
              f"ratio {100 * r_err:5.1f} %")
    if args.out:
        write_calibration(args.out, args, static_w, idle_w, busy_w, power_errors,
                          ratio_errors)
        print(f"wrote {args.out}")
    print(f"node_static_w={static_w:.3f}")
    print(f"device_idle_w={idle_w:.4f}")
    print(f"busy_w_per_core={busy_w:.4f}")
    print(f"splits_meeting_goal={meeting}")
    print(f"power_error_median={float(np.median(power_errors)):.4f}")
    print(f"ratio_error_max={float(np.max(ratio_errors)):.4f}")


def write_calibration(out: Path, args: argparse.Namespace, static_w: float, idle_w: float,
                      busy_w: float, power_errors: list[float],
                      ratio_errors: list[float]) -> None:
    held_out = [w for w in WINDOWS if w not in args.fit]
    doc = {
        "hardware": "Intel Xeon Gold 6126 (IPA's cluster node, ipa-ext RAPL package energy)",
        "node_static_w": round(static_w, 3),
        "device_idle_w": round(idle_w, 4),
        "busy_w_per_core": round(busy_w, 4),
        "description": (
            "calibrated by non-negative least squares of mean RAPL package power (ipa-ext "
            f"energy_summary.csv, energy_logs runs) of IPA, FA2-low, FA2-high, RIM-high on "
            f"the {' and '.join(args.fit)} windows against the runs replayed on IPA's CPU "
            f"profile fragments (request-level simulator, {args.slice_s} s per window); "
            f"held out ({' and '.join(held_out)}): median power error "
            f"{100 * float(np.median(power_errors)):.1f} %, largest error of a policy's "
            f"energy relative to IPA's {100 * float(np.max(ratio_errors)):.1f} %; command: "
            f"python benchmarks/energy_calibration.py --fit {' '.join(args.fit)} "
            f"--slice-s {args.slice_s} --out {out}"
        ),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False, width=100))


if __name__ == "__main__":
    sys.exit(main())
