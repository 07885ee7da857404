"""The continuous-batching LLM model against ML.ENERGY's measurements it did and did not see.

    python benchmarks/llm_serving.py [--mlenergy DIR] [--all]

Per variant (model on GPU type x GPUs per replica), two checks:

* saturation: driven at every measured cap with a full queue, the model's J/request,
  output tokens/s and median inter-token latency against the measured ones (the model's
  inputs: this checks the simulator and the length draws, goal within 5 %);
* leave one out: each interior cap predicted from the others by the curve's
  interpolation (`envs.model.llm_curve.leave_one_out`), its tokens/s, power and median
  ITL against the measured ones (goal: median error within 10 % per variant).

Variants: the LLMs of the shipped GPU profiles on H100 (default) or every ``lm-arena-chat``
file on every measured GPU count (``--all``). The idle power (P(0)) is 75 W per GPU, the
shipped profiles' assumed value; it enters neither check at saturation nor between points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy.mlenergy.curves import llm_curve, saturation_checks  # noqa: E402
from energy.mlenergy.files import read_model_file  # noqa: E402
from envs.config.cli import command_line  # noqa: E402
from envs.config.errors import ConfigError  # noqa: E402
from envs.model.llm_curve import leave_one_out  # noqa: E402

MLENERGY = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlenergy" / "v3" / "models"
SHIPPED = [("meta-llama__Llama-3.1-8B-Instruct", "H100", 1), ("google__gemma-3-12b-it", "H100", 1),
           ("google__gemma-3-27b-it", "H100", 2),
           ("Qwen__Qwen3-30B-A3B-Instruct-2507", "H100", 1)]
IDLE_W = 75.0
QUANTITIES = ("tokens_per_s", "power_w", "itl_median_ms")


def variants(models_dir: Path, every: bool) -> list[tuple[Path, str, int]]:
    """``(file, GPU, GPUs per replica)`` of the variants to check."""
    if not every:
        return [(models_dir / f"{stem}__lm-arena-chat.json", gpu, n) for stem, gpu, n in SHIPPED]
    out = []
    for path in sorted(models_dir.glob("*__lm-arena-chat.json")):
        f = read_model_file(path)
        out += [(path, gpu, n) for gpu, n in
                sorted({(c["gpu_model"], int(c["num_gpus"])) for c in f.configurations})]
    return out


@command_line("python benchmarks/llm_serving.py")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python benchmarks/llm_serving.py",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlenergy", type=Path, default=MLENERGY,
                        help="ML.ENERGY v3 models/ folder (default: ../shared's)")
    parser.add_argument("--all", action="store_true", help="every lm-arena-chat variant")
    args = parser.parse_args(argv)
    if not args.mlenergy.is_dir():
        raise ConfigError(f"--mlenergy {args.mlenergy} is not a folder; give ML.ENERGY v3's "
                          "models/ folder")
    print("| variant | caps | saturation: worst error | leave one out: median (max) error of "
          "tokens/s, power, median ITL | dips kept as measured |")
    print("|---|---|---|---|---|")
    sat_worst, loo_medians, within = [], {q: [] for q in QUANTITIES}, 0
    rows = variants(args.mlenergy, args.all)
    for path, gpu, gpus in rows:
        f = read_model_file(path)
        checks = saturation_checks(f, gpu, gpus, IDLE_W)
        curve = llm_curve(f, gpu, gpus, IDLE_W)
        loo = leave_one_out(curve.points, curve.idle_w)
        worst = max(c.worst_error() for c in checks)
        sat_worst.append(worst)
        cells = []
        medians = []
        for q in QUANTITIES:
            errs = np.abs([r[q] for r in loo]) if loo else np.array([np.nan])
            loo_medians[q].append(float(np.median(errs)))
            medians.append(float(np.median(errs)))
            cells.append(f"{np.median(errs):.1%} ({np.max(errs):.1%})")
        within += int(all(m <= 0.10 for m in medians))
        dips = ", ".join(f"cap {cap} {drop:.0%} below" for cap, _, drop in curve.dips()) or "-"
        print(f"| {f.model_id} on {gpus} x {gpu} | {len(curve.points)} | {worst:.2%} | "
              f"{'; '.join(cells)} | {dips} |")
    print(f"variants={len(rows)}")
    print(f"saturation_error_max={max(sat_worst):.4f}")
    for q in QUANTITIES:
        print(f"loo_{q}_median_worst={np.nanmax(loo_medians[q]):.4f}")
    print(f"variants_loo_median_within_10pct={within}")


if __name__ == "__main__":
    sys.exit(main())
