"""How the fleet's measured gap moves with the assumed and cited figures (issue 24, item 7).

The gap: the energy-aware ILP at IPA($)'s accuracy (`ipa_energy_matched`) over IPA($)'s
energy (`ipa`, IPA's ILP with its cost in dollars), on IPA's four real windows of the
A100 + H100 chat fleet (request-level simulator, one simulator seed), the report of
``configs/eval/llm_chat_a100_h100_tight_windows.yaml`` replayed with one figure changed at a
time (each from a copy of the profile with the pools edited; nothing else moves):

* price ratio H100 / A100 (cited 4.29 / 1.99 = 2.16): 1.5 and 2.7 (the A100 stays $1.99);
* host floor per 8-GPU node (estimated 1664 W): 1100 and 2300 W, both pools;
* idle power per GPU (cited 75 W H100, 63 W A100): both scaled so the H100's is 145 W;
* node boot time (not found: assumed): 60, 120 and 300 s, each held as long as it boots.

Usage (from the repository root; about 10 minutes here)::

    python benchmarks/fleet_sensitivity.py --trace ../shared/data/twitter/workload.txt

The last lines are ``metric=value``: ``<setting>_ratio_median`` (median over the four
windows of matched / IPA($) energy), ``<setting>_ratio_min`` and ``_max``, and
``<setting>_floor_over_ipa_min`` (the lowest window floor over IPA($)'s energy: what no
policy goes below).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.evaluation.run import run_evaluation  # noqa: E402
from agents.evaluation.setup import eval_config_from_flags  # noqa: E402
from envs.config.cli import command_line  # noqa: E402
from envs.model.profiles import resolve_profile_path  # noqa: E402

CONFIG = Path("configs/eval/llm_chat_a100_h100_tight_windows.yaml")
A100_PRICE = 1.99
SETTINGS: dict[str, dict] = {
    "base": {},
    "price_ratio_1.5": {"price": 1.5},
    "price_ratio_2.7": {"price": 2.7},
    "host_1100w": {"host": 1100.0},
    "host_2300w": {"host": 2300.0},
    "idle_145w": {"idle": 145.0 / 75.0},
    "boot_60s": {"boot": 60.0},
    "boot_120s": {"boot": 120.0},
    "boot_300s": {"boot": 300.0},
}
"""Setting name -> the one change (module docstring)."""


def edited_profile(source: Path, change: dict, out: Path) -> Path:
    """A copy of the profile with its pools edited.

    Args:
        source: The fleet profile.
        change: ``price`` (H100 / A100 ratio), ``host`` (W per node) or ``idle`` (factor).
        out: Where to write the copy.

    Returns:
        ``out``.
    """
    doc = yaml.safe_load(source.read_text())
    for pool in doc["pools"]:
        if "price" in change and pool["name"] == "h100":
            pool["price_per_device_hour"] = round(change["price"] * A100_PRICE, 4)
        if "host" in change:
            pool["node_static_w"] = change["host"]
        if "idle" in change:
            pool["device_idle_w"] = round(pool["device_idle_w"] * change["idle"], 3)
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return out


def ratios(report: Path) -> dict[str, tuple[float, float]]:
    """Matched over IPA($) energy per window, and the window's energy floor over IPA($)'s
    energy (`envs.model.floor`, the report's ``floor_j``), from a report's summary.csv.

    Args:
        report: The report folder.

    Returns:
        Window -> (ratio, floor ratio).
    """
    with (report / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by = {(r["policy"], r["workload"]): r for r in rows}
    windows = [r["workload"] for r in rows if r["policy"] == "ipa"]
    ipa_j = {w: float(by[("ipa", w)]["energy_j"]) for w in windows}
    return {w: (float(by[("ipa_energy_matched", w)]["energy_j"]) / ipa_j[w],
                float(by[("ipa", w)]["floor_j"]) / ipa_j[w]) for w in windows}


@command_line("python benchmarks/fleet_sensitivity.py")
def main(argv: list[str] | None = None) -> int:
    """Run every setting and print the table and the metrics.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS),
                        choices=list(SETTINGS))
    args = parser.parse_args(argv)
    config = yaml.safe_load(CONFIG.read_text())
    source = resolve_profile_path(config["env"]["pipeline"])
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="fleet-sens-") as tmp:
        for name in args.settings:
            change = SETTINGS[name]
            overrides = [f"name={name}", f"output_dir={tmp}", "seeds=[0]",
                         "policies=[ipa,ipa_energy_matched]", "tracking.mode=disabled"]
            if "boot" in change:
                overrides += [f"env.node_boot_s={change['boot']}",
                              f"env.node_hold_s={change['boot']}"]
            elif change:
                path = edited_profile(source, change, Path(tmp) / f"{name}.yaml")
                overrides.append(f"env.pipeline={path}")
            cfg = eval_config_from_flags(CONFIG, args.trace, [], overrides)
            report = run_evaluation(cfg, args.trace, [], "fleet_sensitivity").parent
            results[name] = ratios(report)
            print(f"# {name}: " + ", ".join(f"{w} {r:.3f} (floor {f:.3f})"
                                            for w, (r, f) in results[name].items()), flush=True)
    print("| setting | " + " | ".join(next(iter(results.values()))) + " | floor / IPA($) |")
    for name, per_window in results.items():
        floors = [f for _, f in per_window.values()]
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r, _ in per_window.values())
              + f" | {min(floors):.3f}-{max(floors):.3f} |")
    for name, per_window in results.items():
        values = np.array([r for r, _ in per_window.values()])
        floors = np.array([f for _, f in per_window.values()])
        print(f"{name}_ratio_median={np.median(values):.4f}")
        print(f"{name}_ratio_min={values.min():.4f}")
        print(f"{name}_ratio_max={values.max():.4f}")
        print(f"{name}_floor_over_ipa_min={floors.min():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
