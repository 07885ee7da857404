"""The import graph: no cycle between top-level packages or between files, and every
package imports only the layers below it (DESIGN.md, "Layering")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["models", "envs", "energy", "ipa_baseline", "agents", "train", "evaluate"]
ALLOWED = {  # what each top-level package may import (besides itself)
    "models": set(),
    "envs": {"models"},
    "energy": {"models", "envs"},
    "ipa_baseline": {"envs"},
    "agents": {"envs", "energy", "ipa_baseline", "models"},
    "train": {"agents", "envs", "energy", "ipa_baseline"},
    "evaluate": {"agents", "envs", "energy", "ipa_baseline"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    files = {}
    for top in LAYERS:
        if (ROOT / f"{top}.py").is_file():
            files[top] = ROOT / f"{top}.py"
        for path in (ROOT / top).rglob("*.py") if (ROOT / top).is_dir() else ():
            files[module_name(path)] = path
    return files


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Project modules imported anywhere in ``path`` (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = project_files()
    modules = set(files)
    return {m: imports_of(p, modules) - {m} for m, p in files.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_cycle_between_files() -> None:
    edges = graph()
    package_inits = {m for m, p in project_files().items() if p.name == "__init__.py"}
    # a package's __init__ re-exporting its own modules is not a cycle between files
    files_only = {m: {n for n in deps if n not in package_inits or not m.startswith(n + ".")}
                  for m, deps in edges.items()}
    assert find_cycle(files_only) is None


def test_packages_import_only_the_layers_below() -> None:
    wrong = []
    for module, deps in graph().items():
        top = module.split(".")[0]
        for dep in deps:
            dep_top = dep.split(".")[0]
            if dep_top != top and dep_top not in ALLOWED[top]:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, wrong


def test_no_cycle_between_packages() -> None:
    tops: dict[str, set[str]] = {}
    for module, deps in graph().items():
        top = module.split(".")[0]
        tops.setdefault(top, set()).update(d.split(".")[0] for d in deps)
    assert find_cycle({k: v - {k} for k, v in tops.items()}) is None


def test_tracking_and_config_checks_load_without_torch() -> None:
    """W&B's probe and the configs load without torch or stable-baselines3, so a bad
    config or an unreachable W&B server fails in well under a second."""
    import subprocess
    import sys

    code = ("import sys, agents.tracking, agents.train_config, agents.eval_config; "
            "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
