"""The README's result tables, from a report's committed summary.csv (nothing is re-run).

    python benchmarks/result_tables.py results/chat_to_image_windows \
        --policies ppo ipa ipa_tuned ipa_energy hpa static_high [--unit kJ]

One row per (window, policy) in the report's window order and the given policy order:
violations, request-weighted and product accuracy, energy with its 95 % CI, its static /
idle / dynamic split, energy over IPA's on the same window and over the window's energy
floor (`envs.model.floor`, in summary.csv as ``floor_j``). Ends with
``floor_over_ipa_min=`` / ``_max=`` (the floor as a share of IPA's energy: what no policy
can go below).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.config.cli import command_line  # noqa: E402
from envs.config.errors import ConfigError  # noqa: E402

UNITS = {"kJ": 1e3, "MJ": 1e6}
DECIMALS = {"kJ": 1, "MJ": 2}


def read_rows(report: Path) -> list[dict[str, str]]:
    """The report's summary rows (one line naming the file and the fix if absent)."""
    path = report / "summary.csv"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give a report folder evaluate.py wrote")
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    if rows and "floor_j" not in rows[0]:
        raise ConfigError(f"{path} has no floor_j column; regenerate the report with the "
                          "command in its report.md")
    return rows


@command_line("python benchmarks/result_tables.py")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python benchmarks/result_tables.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a report folder (its summary.csv)")
    parser.add_argument("--policies", nargs="+", required=True)
    parser.add_argument("--unit", choices=sorted(UNITS), default="kJ")
    parser.add_argument("--accuracy-label", default="sum of ranks, 0-2")
    args = parser.parse_args(argv)
    rows = read_rows(args.report)
    by = {(r["workload"], r["policy"]): r for r in rows}
    windows = list(dict.fromkeys(r["workload"] for r in rows))
    missing = [p for p in args.policies if not any(r["policy"] == p for r in rows)]
    if missing or not any(r["policy"] == "ipa" for r in rows):
        raise ConfigError(f"{args.report}: no rows for {missing or ['ipa']}; policies in it: "
                          f"{sorted({r['policy'] for r in rows})}")
    scale = UNITS[args.unit]
    print(f"| window | policy | SLA violations | accuracy, request-weighted "
          f"({args.accuracy_label}) | product accuracy | energy {args.unit} (95 % CI) | "
          "static / idle / dynamic | energy / IPA | energy / floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    floor_share = []
    for window in windows:
        ipa = float(by[(window, "ipa")]["energy_j"])
        floor_share.append(float(by[(window, "ipa")]["floor_j"]) / ipa)
        for policy in args.policies:
            r = by[(window, policy)]
            name = f"**{policy}**" if policy == "ppo" else policy
            energy = float(r["energy_j"])
            d = DECIMALS[args.unit]
            parts = " / ".join(f"{float(r[k]) / scale:.{d}f}"
                               for k in ("static_j", "idle_j", "dynamic_j"))
            print(f"| {window} | {name} | {100 * float(r['sla_violation_rate']):.2f} % | "
                  f"{float(r['accuracy_requests']):.3f} | {float(r['accuracy_product']):.3f} | "
                  f"{energy / scale:.{d}f} ± {float(r['energy_j_ci95']) / scale:.{d}f} | "
                  f"{parts} | "
                  f"{energy / ipa:.3f} | {float(r['energy_over_floor']):.3f} |")
    print(f"floor_over_ipa_min={min(floor_share):.4f}")
    print(f"floor_over_ipa_max={max(floor_share):.4f}")


if __name__ == "__main__":
    sys.exit(main())
