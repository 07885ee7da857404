"""A learned policy against the better of the planners, from an evaluation's ``steps.csv``
(issue 26, item 6): energy, request-weighted accuracy and violations, with the training
seed as the unit.

    python benchmarks/learning_gap.py results/llm_chat_a100_h100_boot_heldout_days_e10 \\
        [--agent ppo] [--planners ipa_energy mpc]

Per planner: its energy summed over every (window, simulator seed), its violation rate and
its request-weighted accuracy (IPA's rank accuracy of each interval weighted by the requests
it served). The better planner is the one of lower energy among those with no more
violations than the other (the lower energy when neither has fewer). Per training seed of
the agent: its energy over the better planner's on the same windows and simulator seeds (a
ratio of sums), its accuracy and violation rate minus the planner's; then the mean over the
seeds with a Student-t 95 % CI (the seeds are the independent units; the windows are nested
in them). Beside it: each window's energy floor (``summary.csv``'s ``floor_j``) over the
planner's energy, the least of them (no policy goes below the floor).

The agent's energy over each planner's is printed too (the better one may differ in
accuracy and violations: a single point, not a frontier). The last lines are
``metric=value``: ``agent_over_planner`` (goal <= 0.95) with
``_ci_low``/``_ci_high``, ``accuracy_diff``, ``violation_diff`` (each with CIs),
``floor_over_planner_min`` and ``n_train_seeds``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.evaluation.statistics import mean_ci95  # noqa: E402
from envs.config.cli import command_line  # noqa: E402
from envs.config.errors import ConfigError  # noqa: E402

Cell = tuple[str, str]  # (window, simulator seed)


def read_steps(report: Path) -> dict[str, dict[str, dict[Cell, np.ndarray]]]:
    """Per policy, per training seed, per (window, simulator seed): the sums of energy,
    arrivals, violations, served and served x rank accuracy.

    Args:
        report: An evaluation's folder (its ``steps.csv``).

    Returns:
        ``{policy: {train seed: {cell: [energy_j, arrived, violations, served,
        served x accuracy]}}}``.

    Raises:
        ConfigError: No ``steps.csv`` there.
    """
    path = report / "steps.csv"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass an evaluation's folder (evaluate.py "
                          "writes steps.csv there)")
    out: dict[str, dict[str, dict[Cell, np.ndarray]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: np.zeros(5))))
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            served = float(row["served"])
            out[row["policy"]][row["train_seed"]][(row["workload"], row["seed"])] += (
                float(row["energy_j"]), float(row["arrived"]), float(row["sla_violations"]),
                served, served * float(row["accuracy_rank_sum"]))
    return out


def totals(cells: dict[Cell, np.ndarray], keep: set[Cell] | None = None) -> np.ndarray:
    """Energy, violation rate and request-weighted accuracy over the cells in ``keep``.

    Args:
        cells: Per cell sums (`read_steps`).
        keep: The cells to add (None: all).

    Returns:
        ``[energy_j, violation rate, accuracy]``.
    """
    s = sum((v for c, v in cells.items() if keep is None or c in keep), np.zeros(5))
    return np.array([s[0], s[2] / max(s[1], 1.0), s[4] / max(s[3], 1.0)])


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and Student-t 95 % CI over independent units (`mean_ci95`; nan CI for one).

    Args:
        values: One value per unit.
    """
    mean, half = mean_ci95(values)
    return mean, mean - half, mean + half


def floors_over(report: Path, planner: str) -> list[float]:
    """Each window's floor over the planner's energy (``summary.csv``).

    Args:
        report: The evaluation's folder.
        planner: The planner's policy name.
    """
    with (report / "summary.csv").open(newline="") as f:
        return [float(r["floor_j"]) / float(r["energy_j"]) for r in csv.DictReader(f)
                if r["policy"] == planner]


@command_line("python benchmarks/learning_gap.py")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/learning_gap.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="an evaluation's folder")
    parser.add_argument("--agent", default="ppo", help="the learned policy's name")
    parser.add_argument("--planners", nargs="+", default=["ipa_energy", "mpc"])
    args = parser.parse_args(argv)
    steps = read_steps(args.report)
    missing = [p for p in (args.agent, *args.planners) if p not in steps]
    if missing:
        raise ConfigError(f"{args.report / 'steps.csv'} has no episodes of {missing} (it has "
                          f"{sorted(steps)}); pass --agent/--planners it evaluated")
    planners = {p: totals(next(iter(steps[p].values()))) for p in args.planners}
    for name, (energy, viol, acc) in planners.items():
        print(f"{name}: {energy / 1e6:.2f} MJ, violations {viol:.4%}, accuracy {acc:.3f}")
    best = min(planners, key=lambda p: (planners[p][0], planners[p][1]))
    fewer = min(planners, key=lambda p: (planners[p][1], planners[p][0]))
    if planners[fewer][1] < planners[best][1]:
        print(f"{best} spends less energy but violates more than {fewer}; taking {fewer}")
        best = fewer
    reference = next(iter(steps[best].values()))
    ratios, acc_diff, viol_diff = [], [], []
    for seed, cells in sorted(steps[args.agent].items()):
        keep = set(cells) & set(reference)
        agent, planner = totals(cells, keep), totals(reference, keep)
        ratios.append(agent[0] / planner[0])
        viol_diff.append(agent[1] - planner[1])
        acc_diff.append(agent[2] - planner[2])
        print(f"{args.agent} training seed {seed}: energy {agent[0] / planner[0]:.3f} x "
              f"{best}, violations {agent[1]:.4%} ({planner[1]:.4%}), accuracy "
              f"{agent[2]:.3f} ({planner[2]:.3f})")
    for name in args.planners:  # the agent against each planner, on the same cells
        ref = next(iter(steps[name].values()))
        per_seed = [totals(c, set(c) & set(ref))[0] / totals(ref, set(c) & set(ref))[0]
                    for _, c in sorted(steps[args.agent].items())]
        m, lo, hi = mean_ci(per_seed)
        print(f"{args.agent} over {name}: energy {m:.3f} (95 % CI {lo:.3f}-{hi:.3f})")
    floor_min = min(floors_over(args.report, best))
    ratio, acc, viol = mean_ci(ratios), mean_ci(acc_diff), mean_ci(viol_diff)
    print(f"better planner: {best}; the floor is {floor_min:.3f}x its energy at the least")
    print(f"agent_over_planner={ratio[0]:.4f}")
    print(f"agent_over_planner_ci_low={ratio[1]:.4f}")
    print(f"agent_over_planner_ci_high={ratio[2]:.4f}")
    print(f"accuracy_diff={acc[0]:.4f}")
    print(f"accuracy_diff_ci=[{acc[1]:.4f},{acc[2]:.4f}]")
    print(f"violation_diff={viol[0]:.5f}")
    print(f"violation_diff_ci=[{viol[1]:.5f},{viol[2]:.5f}]")
    print(f"floor_over_planner_min={floor_min:.4f}")
    print(f"n_train_seeds={len(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
