"""The import graph: no cycle between top-level packages or between files, and every
package imports only the layers below it (DESIGN.md, "Layering")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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


# Rooms inside the two big packages, lowest first: a room imports only rooms listed before
# it in its package (and its own modules). A package's top-level modules form the room
# named after the package ("envs": the env itself; "agents": what train.py runs).
ROOMS = {
    "envs": ["envs.config", "envs.model", "envs.workload", "envs.metering", "envs.serving",
             "envs.backends", "envs.live", "envs", "envs.batched"],
    "agents": ["agents.runs", "agents.policies", "agents.evaluation", "agents.training",
               "agents.sweeps", "agents"],
}


def room_of(module: str) -> str:
    """The room a module lives in: ``envs.model.perf`` -> ``envs.model``;
    ``envs.pipeline_env`` -> ``envs``; ``agents.sweeps._shims.amdsmi`` -> ``agents.sweeps``."""
    parts = module.split(".")
    if parts[0] not in ROOMS:
        return parts[0]
    if len(parts) >= 2 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def room_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, deps in graph().items():
        room = room_of(module)
        if room.split(".")[0] not in ROOMS:
            continue
        edges.setdefault(room, set()).update(
            r for d in deps if (r := room_of(d)) != room and r.split(".")[0] == room.split(".")[0])
    return edges


def test_room_of() -> None:
    assert room_of("envs.model.perf") == "envs.model"
    assert room_of("envs.pipeline_env") == "envs"
    assert room_of("envs.live.backend") == "envs.live"
    assert room_of("agents.sweeps._shims.amdsmi") == "agents.sweeps"
    assert room_of("agents.train_run") == "agents"
    assert room_of("ipa_baseline.ilp") == "ipa_baseline"


def test_every_room_is_listed() -> None:
    """A new folder in envs/ or agents/ must be placed in ROOMS (and so in the order)."""
    for top, rooms in ROOMS.items():
        found = {f"{top}.{d.name}" for d in (ROOT / top).iterdir()
                 if d.is_dir() and (d / "__init__.py").is_file()} | {top}
        assert found == set(rooms), (top, sorted(found ^ set(rooms)))


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """``room imports other`` for every import of a room that is not below it in ROOMS."""
    wrong = []
    for room, deps in edges.items():
        order = ROOMS[room.split(".")[0]]
        below = set(order[:order.index(room)])
        wrong += [f"{room} imports {d}" for d in sorted(deps - below)]
    return wrong


def test_rooms_import_only_the_rooms_below() -> None:
    assert not upward_imports(room_edges()), upward_imports(room_edges())


def test_no_cycle_between_rooms() -> None:
    assert find_cycle(room_edges()) is None


def may_import(room: str) -> set[str]:
    """The rooms named in a room's ``__init__`` docstring after "May import:"."""
    init = ROOT / room.replace(".", "/") / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert "May import:" in doc, f"{init}: its docstring says what it holds and may import"
    text = doc.split("May import:", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"``([a-z_.]+)``", text))


def test_each_room_says_what_it_may_import() -> None:
    """Each room's docstring names exactly the rooms below it that it may import (its own
    package's rooms; the top-level packages are checked by ALLOWED above)."""
    for top, rooms in ROOMS.items():
        for room in rooms:
            if room == top:
                continue
            said = {r for r in may_import(room) if r.split(".")[0] == top}
            actual = room_edges().get(room, set())
            below = set(rooms[:rooms.index(room)])
            assert actual <= said <= below, (room, sorted(said), sorted(actual))


def test_the_room_rule_catches_an_upward_import() -> None:
    edges = {"envs.model": {"envs.config", "envs.workload"}, "envs.batched": {"envs"}}
    assert upward_imports(edges) == ["envs.model imports envs.workload"]
    assert find_cycle({"envs.model": {"envs.workload"}, "envs.workload": {"envs.model"}})


def test_old_flat_paths_are_gone() -> None:
    """No shim: the modules that moved into rooms cannot be imported by their old names."""
    import importlib

    for old in ("envs.perf", "envs.spec", "envs.traces", "envs.meter", "envs.errors",
                "envs.config_loader", "agents.ppo", "agents.episode", "agents.eval_config",
                "agents.sweep", "agents.train_config", "agents.policies.registry"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)


def test_tracking_and_config_checks_load_without_torch() -> None:
    """W&B's probe and the configs load without torch or stable-baselines3, so a bad
    config or an unreachable W&B server fails in well under a second."""
    import subprocess
    import sys

    code = ("import sys, agents.runs.tracking, agents.runs.train_config, "
            "agents.evaluation.config; "
            "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
