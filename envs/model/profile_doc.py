"""Building blocks of a profile document (the dict `envs.model.profiles.load_pipeline` reads),
shared by the profiler, the importers, the tests and the benchmarks that write profiles.

`profile_document` assembles the whole document (it fills in ``row_columns``);
`variant_entry` one variant (`continuous_entry` its continuous-batching block);
`synthetic_rows` the generated rows of the synthetic test
and benchmark profiles (latency shapes assumed, not measured).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import yaml

from envs.config.errors import ConfigError, IpaEnergyError
from envs.model.llm_curve import CapPoint
from envs.model.load_table import LoadTable
from envs.model.power import busy_batch_energy_j
from envs.model.profile_format import FORMAT_VERSION, ROW_COLUMNS


def row_columns() -> list[str]:
    """The ``row_columns`` entry every profile carries.

    Returns:
        A fresh list of `envs.model.profile_format.ROW_COLUMNS`.
    """
    return list(ROW_COLUMNS)


def variant_entry(name: str, accuracy: float, rows: list[list], *, metric: str, source: str,
                  base_cores: int, weights_gb: float | None = None,
                  continuous: dict[str, Any] | None = None) -> dict[str, Any]:
    """One variant of a stage's ``variants`` list.

    Args:
        name: Variant name.
        accuracy: Its accuracy, in ``metric``'s unit.
        rows: Its profile rows, in `ROW_COLUMNS` order.
        metric: What ``accuracy`` measures (e.g. ``top-1 (%)``).
        source: Where ``accuracy`` comes from.
        base_cores: Cores (or GPUs) of one replica at the base allocation.
        weights_gb: Size of its weights, GB (for size-dependent cold starts); left out
            when None.
        continuous: Its ``continuous:`` block (`continuous_entry`; an LLM of a ``cap``
            stage), after the rows; left out when None.

    Returns:
        The variant mapping.
    """
    entry = {"name": name, "accuracy": accuracy, "accuracy_metric": metric,
             "accuracy_source": source, "base_cores": base_cores}
    if weights_gb is not None:
        entry["weights_gb"] = weights_gb
    entry["rows"] = rows
    if continuous is not None:
        entry["continuous"] = continuous
    return entry


def significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (0 stays 0).

    Args:
        value: A finite number.
        digits: Significant digits, >= 1.

    Returns:
        The rounded number.
    """
    return float(f"{value:.{digits}g}")


def load_table_entry(cap: int, table: LoadTable, digits: int = 4) -> dict[str, Any]:
    """One entry of a ``continuous:`` block's ``tables`` list.

    Args:
        cap: The concurrency cap the table is for.
        table: Its load table (`envs.serving.load_table.load_table`).
        digits: Significant digits of every number written.

    Returns:
        ``{cap, saturated_rps, loads, p99_ms, mean_ms, power_w}``.
    """
    def col(values: Any) -> list[float]:
        return [significant(float(v), digits) for v in values]

    return {"cap": cap, "saturated_rps": significant(table.saturated_rps, digits),
            "loads": col(table.loads), "p99_ms": col(table.p99_ms),
            "mean_ms": col(table.mean_ms), "power_w": col(table.power_w)}


def continuous_entry(points: Iterable[CapPoint], bins: Iterable[float],
                     counts: Iterable[float], tables: list[dict[str, Any]], *,
                     points_source: str, tables_source: str, idle_w: float,
                     max_running: int | None = None) -> dict[str, Any]:
    """A variant's ``continuous:`` block (`envs.model.profile_format`).

    Args:
        points: The measured points, one per cap, increasing (written as given: round
            them before simulating the tables, so the file reproduces them).
        bins: Output-length bin edges.
        counts: Requests per bin.
        tables: `load_table_entry` mappings, one per cap the stage offers.
        points_source: Source id of the points (measured).
        tables_source: Source id of the tables (estimated).
        idle_w: The replica's idle power the curve and the tables were built with (its
            GPUs' idle power), watts: what their power is measured above.
        max_running: The replica's admission limit under a per-token target (left out
            when None).

    Returns:
        The block.
    """
    block = {"points_source": points_source,
             "points": [[p.cap, p.concurrency, p.tokens_per_s, p.power_w, p.itl_median_ms,
                         p.itl_p99_ms] for p in points],
             "output_lengths": {"bins": list(bins), "counts": list(counts)}}
    if max_running is not None:
        block["max_running"] = max_running
    return {**block, "idle_w": idle_w, "tables_source": tables_source, "tables": tables}


def stage_entry(name: str, variants: list[dict[str, Any]], batch_sizes: Iterable[int],
                knob: str = "batch") -> dict[str, Any]:
    """One stage of a profile's ``stages`` list.

    Args:
        name: Stage name.
        variants: Its variants (`variant_entry`).
        batch_sizes: The knob values policies may choose for it (each measured).
        knob: ``batch`` (static batch sizes) or ``cap`` (an LLM's concurrency caps); only
            written when not ``batch``.

    Returns:
        The stage mapping.
    """
    entry: dict[str, Any] = {"name": name}
    if knob != "batch":
        entry["knob"] = knob
    return {**entry, "batch_sizes": sorted(batch_sizes), "variants": variants}


def profile_document(name: str, *, sla_ms: float, pools: list[dict[str, Any]],
                     sources: dict[str, dict[str, str]], stages: list[dict[str, Any]],
                     batch_sizes: Iterable[int] | None = None, notes: str | None = None
                     ) -> dict[str, Any]:
    """A whole profile document (`envs.model.profile_format`), in the shipped key order.

    Args:
        name: Pipeline name.
        sla_ms: End-to-end SLA, milliseconds.
        pools: The device pools (`pool_entry` mappings).
        sources: Source id -> ``{"kind": ..., "description": ...}``.
        stages: `stage_entry` mappings, or ``{"name": ..., "variants": [...]}`` for
            stages that take ``batch_sizes``.
        batch_sizes: The knob values of every stage that does not list its own.
        notes: What the rows mean, why this SLA, caveats; left out when None.

    Returns:
        The document, with ``format_version`` and ``row_columns`` filled in.

    Raises:
        ValueError: A stage without its own ``batch_sizes`` and none given.
    """
    shared = None if batch_sizes is None else list(batch_sizes)
    full = []
    for stage in stages:
        if "batch_sizes" in stage:
            full.append(stage)
        elif shared is None:
            raise ValueError(f"stage {stage.get('name')!r} has no batch_sizes and no shared "
                             "list was given")
        else:
            full.append(stage_entry(stage["name"], stage["variants"], shared))
    head: dict[str, Any] = {"format_version": FORMAT_VERSION, "pipeline": name,
                            "sla_ms": sla_ms}
    if notes is not None:
        head["notes"] = notes
    return {**head, "pools": pools, "sources": sources, "row_columns": row_columns(),
            "stages": full}


def synthetic_rows(base_ms: float, *, batches: Iterable[int], cores: Iterable[int],
                   batch_shape: tuple[float, float], core_shape: tuple[float, float],
                   p99_factor: float | Callable[[], float], busy_w_per_core: float = 3.0,
                   latency_source: str = "lat", energy_source: str = "en") -> list[list]:
    """Generated rows (assumed shapes, not measured) for synthetic profiles.

    At ``c`` cores and batch ``b``: mean = ``base_ms`` x (fixed + per_item x b) /
    (per_core x c + rest), with ``batch_shape = (fixed, per_item)`` and
    ``core_shape = (per_core, rest)``; p99 = mean x ``p99_factor``; energy per batch =
    `envs.model.power.busy_batch_energy_j` of ``busy_w_per_core``, c and mean (joules). Rows
    run over cores, then batches.

    Args:
        base_ms: Latency scale, milliseconds.
        batches: Batch sizes.
        cores: Core counts.
        batch_shape: ``(fixed, per_item)`` of the batch term.
        core_shape: ``(per_core, rest)`` of the core term.
        p99_factor: p99 / mean, or a callable drawing it for each row (in row order).
        busy_w_per_core: Dynamic power of one busy core, watts.
        latency_source: Source id of the latencies.
        energy_source: Source id of the energies.

    Returns:
        Rows in `ROW_COLUMNS` order, rounded to 3 (ms) and 5 (J) decimals.
    """
    fixed, per_item = batch_shape
    per_core, rest = core_shape
    batch_list = list(batches)
    out = []
    for c in cores:
        for b in batch_list:
            mean = base_ms * (fixed + per_item * b) / (per_core * c + rest)
            factor = p99_factor() if callable(p99_factor) else p99_factor
            out.append([b, c, round(mean, 3), round(factor * mean, 3),
                        round(busy_batch_energy_j(busy_w_per_core, c, mean), 5), latency_source,
                        energy_source])
    return out


class _RowsDumper(yaml.SafeDumper):
    """`yaml.SafeDumper` that writes every list of scalars in flow style, on one line."""

    def represent_list(self, data: list) -> yaml.Node:  # noqa: D102 - PyYAML hook
        flow = all(not isinstance(x, (list, dict)) for x in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_RowsDumper.add_representer(list, _RowsDumper.represent_list)

ProfileStyle = Literal["block", "inline", "rows"]


def profile_text(doc: dict[str, Any], style: ProfileStyle = "block") -> str:
    """A profile document as YAML text, keys in document order.

    Args:
        doc: The document (`profile_document`).
        style: ``block``: block style throughout (80 columns); ``inline``: every list
            and mapping of scalars in flow style, 100 columns (the CPU profiles of the
            profiler and `energy.apply_calibration`); ``rows``: block style but every list
            of scalars (a row, ``batch_sizes``, ``row_columns``) on one line, 100 columns,
            non-ASCII text as is (the ML.ENERGY importer's GPU profiles).

    Returns:
        The YAML text.
    """
    if style == "inline":
        return yaml.safe_dump(doc, sort_keys=False, width=100, default_flow_style=None)
    if style == "rows":
        return yaml.dump(doc, Dumper=_RowsDumper, sort_keys=False, width=100,
                         allow_unicode=True)
    return yaml.safe_dump(doc, sort_keys=False)


def write_profile(doc: dict[str, Any], path: Path, *, style: ProfileStyle = "block",
                  check: bool = False) -> Path:
    """Write a profile document as YAML (keys in document order; its folder is created).

    Args:
        doc: The document (`profile_document`).
        path: Where to write it.
        style: The YAML layout (see `profile_text`).
        check: Load the text with `envs.model.profiles.load_pipeline` first (from a temporary
            copy), so a document that would not load is never written to ``path``.

    Returns:
        ``path``.

    Raises:
        ConfigError: ``path`` cannot be written (named).
        ProfileError: ``check`` and the document does not load (the message names
            ``path``).
    """
    text = profile_text(doc, style)
    if check:
        from envs.model.profiles import load_pipeline

        with tempfile.TemporaryDirectory() as tmp:
            trial = Path(tmp) / Path(path).name
            trial.write_text(text)
            try:
                load_pipeline(trial)
            except IpaEnergyError as err:
                message = str(err)
                message = (message.replace(str(trial), str(path)) if str(trial) in message
                           else f"{path}: {message}")
                raise type(err)(message) from None
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    except OSError as err:
        raise ConfigError(f"cannot write the profile {path}: {err.strerror or err}; give "
                          "a writable path") from None
    return path
