"""Issue 14's targets, checked per window on committed evaluation reports.

    python benchmarks/result_targets.py results/chat_to_image_windows \
        [--noload results/chat_to_image_windows_noload] \
        [--sensitivity results/chat_to_image_windows_idle0.5 results/chat_to_image_windows_idle2]

Reads each report's ``summary.csv`` (means over training seeds and simulator seeds) and
prints, per window: PPO's energy / IPA's, its SLA violations against IPA's, its
request-weighted accuracy against IPA's minus 1 % of IPA's, the same comparison against
the energy-aware ILP (``ipa_energy``), the tuned HPA and ``ipa_tuned``; whether the
idle-power sensitivity reports keep the energy order of PPO, IPA, ``ipa_energy``,
``ipa_tuned`` and HPA (the main report's order first); and, with ``--noload``, PPO's
energy over ``ipa_energy``'s with and without model loading time. Ends with
``metric=value`` lines.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envs.config.cli import command_line  # noqa: E402
from envs.config.errors import ConfigError  # noqa: E402

RIVALS = ("ipa", "ipa_energy", "ipa_tuned", "hpa")
NEEDED_COLUMNS = ("policy", "workload", "energy_j", "sla_violation_rate", "accuracy_requests")
Table = dict[tuple[str, str], dict[str, float]]


def read_summary(report: Path) -> Table:
    """(policy, window) -> the numeric columns of a report's summary.csv."""
    path = report / "summary.csv"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; run evaluate.py for {report.name} first")
    table: Table = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = sorted(set(NEEDED_COLUMNS) - set(reader.fieldnames or ()))
        if missing:
            raise ConfigError(f"{path} lacks the columns {missing}; it is not an evaluate.py "
                              "summary (regenerate it)")
        for row in reader:
            values = {}
            for key, text in row.items():
                try:
                    values[key] = float(text)
                except (TypeError, ValueError):
                    continue
            table[(row["policy"], row["workload"])] = values
    return table


def beats(ppo: dict[str, float], rival: dict[str, float]) -> bool:
    """PPO at or below the rival's energy at no more violations and at least its
    request-weighted accuracy minus 1 % of it."""
    return (ppo["energy_j"] <= rival["energy_j"]
            and ppo["sla_violation_rate"] <= rival["sla_violation_rate"]
            and ppo["accuracy_requests"] >= 0.99 * rival["accuracy_requests"])


def ranking(table: Table, window: str) -> tuple[str, ...]:
    """Policies ordered by energy on ``window``."""
    names = [p for p in ("ppo", *RIVALS) if (p, window) in table]
    return tuple(sorted(names, key=lambda p: table[(p, window)]["energy_j"]))


@command_line("python benchmarks/result_targets.py")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--noload", type=Path)
    parser.add_argument("--sensitivity", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    main_table = read_summary(args.report)
    windows = sorted({w for p, w in main_table if p == "ppo"})
    if not windows:
        raise ConfigError(f"{args.report}/summary.csv has no ppo rows; evaluate with --agent")
    noload = read_summary(args.noload) if args.noload else None
    others = [read_summary(p) for p in args.sensitivity]
    met = {"energy_0.70": 0, "vs_ipa_energy": 0, "vs_hpa": 0, "vs_ipa_tuned": 0,
           "ranking_kept": 0}
    for w in windows:
        if ("ipa", w) not in main_table:
            raise ConfigError(f"{args.report}/summary.csv has no ipa row for window {w!r}; "
                              "the targets compare against IPA: evaluate with policy ipa")
        ppo, ipa = main_table[("ppo", w)], main_table[("ipa", w)]
        ratio = ppo["energy_j"] / ipa["energy_j"]
        ok_viol = ppo["sla_violation_rate"] <= ipa["sla_violation_rate"]
        ok_acc = ppo["accuracy_requests"] >= 0.99 * ipa["accuracy_requests"]
        met["energy_0.70"] += ratio <= 0.70 and ok_viol and ok_acc
        viol, viol_ipa = 100 * ppo["sla_violation_rate"], 100 * ipa["sla_violation_rate"]
        line = (f"{w}: PPO energy {ratio:.3f} x IPA's; violations {viol:.2f} % vs "
                f"{viol_ipa:.2f} %; "
                f"request-weighted accuracy {ppo['accuracy_requests']:.3f} vs "
                f"{ipa['accuracy_requests']:.3f}")
        for rival in ("ipa_energy", "hpa", "ipa_tuned"):
            if (rival, w) in main_table:
                r = main_table[(rival, w)]
                won = beats(ppo, r)
                met[f"vs_{rival}"] += won
                line += (f"; vs {rival}: energy {ppo['energy_j'] / r['energy_j']:.3f}x, "
                         f"{'ahead' if won else 'not ahead'}")
        kept = all(ranking(t, w) == ranking(main_table, w) for t in others)
        met["ranking_kept"] += kept
        if others:
            orders = " / ".join("<".join(ranking(t, w)) for t in [main_table, *others])
            line += f"; energy order {orders}: {'same' if kept else 'CHANGES'}"
        if (noload is not None and ("ppo", w) in noload and ("ipa_energy", w) in noload
                and ("ipa_energy", w) in main_table):
            gap = ppo["energy_j"] / main_table[("ipa_energy", w)]["energy_j"]
            gap0 = noload[("ppo", w)]["energy_j"] / noload[("ipa_energy", w)]["energy_j"]
            line += f"; PPO / ipa_energy energy {gap:.3f} with model loading, {gap0:.3f} without"
            print(f"{w}_ppo_over_ipa_energy_noload={gap0:.4f}")
        print(line)
        print(f"{w}_ppo_energy_over_ipa={ratio:.4f}")
    for key, count in met.items():
        print(f"windows_{key}={count}")


if __name__ == "__main__":
    sys.exit(main())
