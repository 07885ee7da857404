"""Every command ends a known error with one line on stderr and exit code 2; a bug keeps
its traceback. Each command runs for real in a subprocess (no GPU or RAPL needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envs.config.cli import EXIT_ERROR, command_line
from envs.config.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "true",
           "WANDB_MODE": "disabled", **(extra_env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def nvml_available() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - any failure means no NVML here
        return False
    return True


CASES = [
    # (command line, text the one stderr line must hold)
    (["train.py", "env.cold_start_s=-5"], "train.py: error: env.cold_start_s must be >= 0 s"),
    (["train.py", "env.drop_limit_s=0"], "train.py: error: env.drop_limit_s must be > 0 s"),
    (["train.py", "--resume", "no-such-run"], "no-such-run"),
    (["evaluate.py", "seeds=oops"], "evaluate.py: error: seeds"),
    (["-m", "energy.profiler", "--meter", "rapl", "--rapl-root", "no-powercap"],
     "python -m energy.profiler: error: no RAPL package zones found under no-powercap"),
    (["-m", "energy.profiler", "--pipeline", "nope"], "python -m energy.profiler: error: "),
    (["-m", "envs.workload.fit_predictor", "--trace", "missing.txt", "--out", "p.pt"],
     "python -m envs.workload.fit_predictor: error: "),
    (["benchmarks/ilp_decision_time.py", "--video", "missing.yaml"],
     "python benchmarks/ilp_decision_time.py: error: profile file missing.yaml does not exist"),
    (["benchmarks/energy_frontier.py", "--config", "missing.yaml"],
     "python benchmarks/energy_frontier.py: error: config file missing.yaml does not exist"),
    (["benchmarks/result_tables.py", "missing", "--policies", "ppo"],
     "python benchmarks/result_tables.py: error: missing/summary.csv does not exist"),
    (["benchmarks/llm_serving.py", "--mlenergy", "missing"],
     "python benchmarks/llm_serving.py: error: --mlenergy missing is not a folder"),
    (["-m", "envs.live.server", "--catalog", "nonexist", "--stage", "x", "--variant", "y"],
     "python -m envs.live.server: error: unknown pipeline 'nonexist'"),
    (["-m", "envs.live.server", "--catalog", "tiny", "--stage", "x", "--variant", "y"],
     "python -m envs.live.server: error: catalog 'tiny' has no stage 'x'"),
    (["-m", "envs.live.server", "--catalog", "tiny", "--stage", "tiny", "--variant", "y"],
     "python -m envs.live.server: error: stage 'tiny' has no variant 'y'"),
    (["-m", "envs.live.k8s", "render", "--decision", "a,b"],
     "python -m envs.live.k8s: error: --decision 'a,b': "),
]
ARGPARSE_CASES = [
    (["-m", "energy.profiler", "--budget-s", "-1"],
     "argument --budget-s: '-1' must be a number > 0"),
    (["-m", "envs.workload.fit_predictor", "--pattern", "bursty", "--epochs", "0", "--out", "p.pt"],
     "argument --epochs: '0' must be an integer >= 1"),
    (["benchmarks/meter_overhead.py", "--windows", "0"], "argument --windows: '0' must be"),
    (["benchmarks/train_throughput.py", "--steps", "x"], "argument --steps: 'x' is not an integer"),
]


@pytest.mark.parametrize(("args", "needle"), CASES, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else "")
def test_known_errors_end_in_one_line_and_exit_code_2(args: list[str], needle: str,
                                                      tmp_path: Path) -> None:
    if args[0].endswith(".py"):
        args = [str(REPO / args[0]), *args[1:]]
    proc = run(args, tmp_path)
    assert proc.returncode == EXIT_ERROR, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in lines[0]


@pytest.mark.parametrize(("args", "needle"), ARGPARSE_CASES, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else "")
def test_nonsensical_numbers_are_usage_errors(args: list[str], needle: str,
                                              tmp_path: Path) -> None:
    if args[0].endswith(".py"):
        args = [str(REPO / args[0]), *args[1:]]
    proc = run(args, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("name", "value"), [("STAGE_BATCH", "x"), ("STAGE_CORES", "0"),
                                             ("STAGE_MAX_WAIT_MS", "-1"), ("PORT", "http")])
def test_stage_server_names_a_bad_environment_variable(name: str, value: str,
                                                       tmp_path: Path) -> None:
    proc = run(["-m", "envs.live.server", "--stage", "tiny", "--variant", "tiny4"], tmp_path,
               {name: value})
    assert proc.returncode == EXIT_ERROR, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"python -m envs.live.server: error: environment variable "
                               f"{name}={value!r}")


def test_gpu_check_without_a_gpu_is_one_line(tmp_path: Path) -> None:
    if nvml_available():
        pytest.skip("this machine has NVML; the no-GPU path cannot be tried here")
    proc = run(["-m", "energy.gpu_check", "--out", str(tmp_path / "g.yaml")], tmp_path)
    assert proc.returncode == EXIT_ERROR
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("python -m energy.gpu_check: error: no NVIDIA GPU found")


def test_profiler_nvml_without_a_gpu_is_one_line(tmp_path: Path) -> None:
    if nvml_available():
        pytest.skip("this machine has NVML")
    proc = run(["-m", "energy.profiler", "--meter", "nvml"], tmp_path)
    assert proc.returncode == EXIT_ERROR and "Traceback" not in proc.stderr
    assert "error: no NVIDIA GPU found via NVML" in proc.stderr


def test_the_wrapper_keeps_a_bugs_traceback_and_flattens_a_known_error(capsys) -> None:
    @command_line("demo")
    def known() -> int:
        raise ConfigError("x must be > 0;\n  set x=1")

    @command_line("demo")
    def bug() -> int:
        raise ZeroDivisionError("a bug")

    @command_line("demo")
    def fine() -> None:
        return None

    assert known() == EXIT_ERROR
    assert capsys.readouterr().err == "demo: error: x must be > 0; set x=1\n"
    with pytest.raises(ZeroDivisionError):
        bug()
    assert fine() == 0


def test_profiler_unwritable_out_is_one_line(tmp_path: Path) -> None:
    proc = run(["-m", "energy.profiler", "--pipeline", "tiny", "--out", "/proc/nope/p.yaml"],
               tmp_path)
    assert proc.returncode == EXIT_ERROR and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("python -m energy.profiler: error: cannot write")
    assert "/proc/nope/p.yaml" in proc.stderr and "writable --out" in proc.stderr
