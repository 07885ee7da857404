"""The continuous-batching block of a profile: the shipped llm_chat_h100_cb, its numbers
against hand computation and a fresh simulation, the loader's one-line errors, and the
importer's ``--continuous`` (the ML.ENERGY files in ../shared, skipped where absent)."""

from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from energy.import_mlenergy import check_args, parse_args
from energy.mlenergy.continuous import POINT_DIGITS, REQUESTS, SEED, TABLE_DIGITS
from energy.mlenergy.curves import llm_configurations, llm_curve
from energy.mlenergy.files import read_model_file
from energy.mlenergy.profile import build_profile
from envs.config.errors import ConfigError, ProfileError
from envs.model.profile_doc import significant
from envs.model.profiles import load_pipeline
from envs.serving.load_table import load_table
from envs.workload.lengths import TokenLengths
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "profiles" / "llm_chat_h100_cb.yaml"
CAPS = (8, 16, 32, 64, 96)
DATA = Path(os.environ.get("IPA_SHARED_DATA", SHARED_DATA)) / "mlenergy" / "v3" / "models"
LLAMA = DATA / "meta-llama__Llama-3.1-8B-Instruct__lm-arena-chat.json"
SANA = DATA / "Efficient-Large-Model__SANA1.5_4.8B_1024px_diffusers__text-to-image.json"
needs_data = pytest.mark.skipif(not LLAMA.is_file(), reason=f"ML.ENERGY data absent at {DATA}")


def shipped_doc() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text())


def variant_doc(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [v for v in doc["stages"][0]["variants"] if v["name"] == name]
    return found


# -- the shipped profile (no ../shared needed) ------------------------------------------------

def test_shipped_profile_has_a_continuous_block_with_a_table_per_cap() -> None:
    pipeline = load_pipeline("llm_chat_h100_cb")
    (stage,) = pipeline.stages
    assert stage.knob == "cap" and stage.batch_sizes == CAPS
    assert len(stage.variants) == 4
    for v in stage.variants:
        serving = v.continuous
        assert serving is not None, v.name
        assert pipeline.sources[serving.points_source].kind == "measured"
        assert pipeline.sources[serving.tables_source].kind == "estimated"
        assert set(CAPS) <= {p.cap for p in serving.points}
        idle_w = pipeline.fleet.pools[0].device_idle_w * v.base_cores
        for cap in CAPS:
            table = serving.table(cap)
            assert table.loads[0] == pytest.approx(0.05) and table.loads[-1] == pytest.approx(0.95)
            # P(0) is the GPUs' idle power; a replica under load draws more
            assert np.all(table.power_w > idle_w)
            assert np.all(np.diff(table.power_w) > 0)
        # the SLA the notes justify: the slowest p99 at the smallest cap and load fits
    slowest = max(v.continuous.table(CAPS[0]).p99_ms[0] for v in stage.variants)
    assert slowest <= pipeline.sla_ms < slowest + 10_000
    with pytest.raises(ProfileError, match=r"no load table for cap 128; caps with a table: "
                                           r"\[8, 16, 32, 64, 96\]"):
        stage.variants[0].continuous.table(128)


def _by_hand_tokens_per_s(points: list[list[float]], n: int) -> float:
    """R(n) from the raw points: linear in ln(concurrency) between them; below the first,
    the first point's rate per request; above the last (a limit rounded up from the measured
    concurrency, e.g. Qwen3-30B-A3B at cap 96 ran 88.5), the last point's rate."""
    conc = [p[1] for p in points]
    rate = [p[2] for p in points]
    if n < conc[0]:
        return rate[0] * n / conc[0]
    for i in range(len(points) - 1):
        if conc[i] <= n <= conc[i + 1]:
            share = math.log(n / conc[i]) / math.log(conc[i + 1] / conc[i])
            return rate[i] + (rate[i + 1] - rate[i]) * share
    assert n - conc[-1] < 0.5
    return rate[-1]


@pytest.mark.parametrize("name", ["Llama-3.1-8B-Instruct", "gemma-3-12b-it", "gemma-3-27b-it",
                                  "Qwen3-30B-A3B-Instruct-2507"])
def test_saturated_rate_is_the_rate_at_the_running_limit_over_the_mean_length(name: str) -> None:
    block = variant_doc(shipped_doc(), name)["continuous"]
    bins = np.asarray(block["output_lengths"]["bins"], dtype=float)
    counts = np.asarray(block["output_lengths"]["counts"], dtype=float)
    mean_tokens = float(np.sum(counts * (bins[:-1] + bins[1:]) / 2) / counts.sum())
    serving = next(v for v in load_pipeline(SHIPPED).stages[0].variants
                   if v.name == name).continuous
    assert serving.mean_output_tokens == pytest.approx(mean_tokens, rel=1e-12)
    # load_table divides by the mean of the lengths it drew, stratified (one uniform number
    # in each 1/n slice), whole tokens: the histogram's mean within rounding to a token
    concurrency = {p[0]: p[1] for p in block["points"]}
    for table in block["tables"]:
        limit = max(1, round(concurrency[table["cap"]]))
        rate = _by_hand_tokens_per_s(block["points"], limit)
        assert table["saturated_rps"] == pytest.approx(rate / mean_tokens, rel=2e-3)


def test_a_stored_table_is_a_fresh_simulation_at_the_stored_rounding() -> None:
    pipeline = load_pipeline(SHIPPED)
    llama = pipeline.stages[0].variants[0]
    assert llama.name == "Llama-3.1-8B-Instruct"
    serving = llama.continuous
    assert serving.idle_w == pipeline.fleet.pools[0].device_idle_w * llama.base_cores == 75.0
    curve = serving.curve()
    lengths = TokenLengths.from_histogram(serving.output_bins, serving.output_counts, "llama")
    fresh = load_table(curve, 8, lengths, requests=REQUESTS, seed=SEED)
    stored = serving.table(8)
    half_digit = 0.5 * 10.0 ** (1 - TABLE_DIGITS) * (1 + 1e-9)  # rounding at 4 digits
    assert stored.saturated_rps == pytest.approx(fresh.saturated_rps, rel=half_digit)
    for key in ("loads", "p99_ms", "mean_ms", "power_w"):
        np.testing.assert_allclose(getattr(stored, key), getattr(fresh, key), rtol=half_digit,
                                   err_msg=key)


# -- the loader's checks: one line each, naming file, stage/variant, field and fix -------------

def _tables(v: dict[str, Any]) -> list[dict[str, Any]]:
    return v["continuous"]["tables"]


def _drop_cap(v: dict[str, Any], cap: int) -> None:
    v["continuous"]["points"] = [p for p in v["continuous"]["points"] if p[0] != cap]
    v["continuous"]["tables"] = [t for t in _tables(v) if t["cap"] != cap]


BAD = [
    ("knob", lambda s, v: s.pop("knob"), r"knob is 'batch'; set the stage's 'knob: cap'"),
    ("points_source", lambda s, v: v["continuous"].update(points_source="nope"),
     r"continuous.points_source 'nope' is not in sources .*; add it to 'sources:'"),
    ("tables_source", lambda s, v: v["continuous"].update(tables_source="nope"),
     r"continuous.tables_source 'nope' is not in sources"),
    ("unmeasured cap", lambda s, v: _drop_cap(v, 8),
     r"continuous.points has no measured cap 8 of the stage's batch_sizes .*; remove the cap"),
    ("missing table", lambda s, v: v["continuous"].update(
        tables=[t for t in _tables(v) if t["cap"] != 16]),
     r"continuous.tables has no table for cap 16 .*; regenerate it with"),
    ("table of no point", lambda s, v: _tables(v).append({**_tables(v)[0], "cap": 100}),
     r"continuous.tables \(cap 100\) has no measured point"),
    ("twice", lambda s, v: _tables(v).append(_tables(v)[0]),
     r"continuous.tables \(cap 8\) appears twice; keep one table per cap"),
    ("lengths", lambda s, v: _tables(v)[1]["p99_ms"].pop(),
     r"continuous.tables \(cap 16\): loads, p99_ms, mean_ms and power_w need the same length"),
    ("loads order", lambda s, v: _tables(v)[0]["loads"].reverse(),
     r"continuous.tables \(cap 8\).loads .* must increase within \(0, 1\)"),
    ("load 1", lambda s, v: _tables(v)[0]["loads"].__setitem__(-1, 1.0),
     r"continuous.tables \(cap 8\).loads .* must increase within \(0, 1\)"),
    ("zero", lambda s, v: _tables(v)[0]["p99_ms"].__setitem__(3, 0.0),
     r"continuous.tables \(cap 8\).p99_ms must be finite numbers > 0"),
    ("negative rate", lambda s, v: _tables(v)[2].update(saturated_rps=-1.0),
     r"continuous.tables \(cap 32\).saturated_rps must be finite numbers > 0"),
    ("nan", lambda s, v: _tables(v)[0]["power_w"].__setitem__(0, float("nan")),
     r"continuous.tables\[0\].power_w\[0\]: expected a finite number"),
    ("bins", lambda s, v: v["continuous"]["output_lengths"]["bins"].pop(),
     r"continuous.output_lengths: 50 bin edges for 50 counts \(need one edge more\); give"),
    ("bin order", lambda s, v: v["continuous"]["output_lengths"]["bins"].reverse(),
     r"continuous.output_lengths: bin edges must be finite, >= 0 and increasing"),
    ("counts", lambda s, v: v["continuous"]["output_lengths"]["counts"].__setitem__(0, -1),
     r"continuous.output_lengths: counts must be finite and >= 0 with a positive total"),
    ("no total", lambda s, v: v["continuous"]["output_lengths"].update(
        counts=[0] * len(v["continuous"]["output_lengths"]["counts"])),
     r"counts must be finite and >= 0 with a positive total"),
    ("points order", lambda s, v: v["continuous"]["points"].reverse(),
     r"continuous.points: LLM caps .* must be distinct and in increasing order"),
    ("idle", lambda s, v: v["continuous"]["points"][0].__setitem__(3, 10.0),
     r"continuous.points: LLM idle power 75.0 W must be between 0 and the smallest cap's"),
    ("unknown key", lambda s, v: v["continuous"].update(table=[]),
     r"unknown key 'stages\[0\].variants\[0\].continuous.table' \(did you mean 'tables'"),
]


@pytest.mark.parametrize(("case", "mutate", "needle"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_continuous_block_is_one_line(tmp_path: Path, case: str, mutate, needle: str
                                            ) -> None:
    doc = copy.deepcopy(shipped_doc())
    stage = doc["stages"][0]
    mutate(stage, stage["variants"][0])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ProfileError) as err:
        load_pipeline(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert re.search(needle, message), message
    if case not in ("nan", "unknown key"):  # the strict loader names the dotted path instead
        assert f"chat/{stage['variants'][0]['name']}" in message


# -- the importer ------------------------------------------------------------------------------

def _argv(paths: list[Path], caps: tuple[int, ...], out: Path, *extra: str) -> list[str]:
    return [*map(str, paths), "--gpu", "H100", "--out", str(out),
            "--quality", str(ROOT / "profiles" / "quality" / "mlenergy_quality.yaml"),
            "--release", "ML.ENERGY v3 (leaderboard commit 0cd52dab, data commit b37408f3)",
            "--sla-ms", "60000", "--notes", "test", "--idle-w", "75", "--idle-kind", "assumed",
            "--idle-why", "test", "--node-static-w", "1000", "--static-kind", "assumed",
            "--static-why", "test", "--devices-per-node", "8", "--fleet", "elastic",
            "--fleet-nodes", "4", "--stage-name", "chat", "--batches", *map(str, caps), *extra]


def _build(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    check_args(args)
    return build_profile(args, [(args.stage_name, list(args.paths))])


@needs_data
def test_without_continuous_the_importer_writes_what_it_did(tmp_path: Path) -> None:
    """With the flag the document is the one without it plus the blocks and their two
    sources; and the shipped Llama block is what the importer writes today."""
    out = tmp_path / "p.yaml"
    plain = _build(_argv([LLAMA], CAPS, out))
    full = _build(_argv([LLAMA], CAPS, out, "--continuous"))
    (variant,) = full["stages"][0]["variants"]
    block = variant.pop("continuous")
    new_sources = [k for k in full["sources"] if k not in plain["sources"]]
    assert new_sources == [block["points_source"], block["tables_source"]]
    for key in new_sources:
        del full["sources"][key]
    assert full == plain
    shipped = variant_doc(shipped_doc(), "Llama-3.1-8B-Instruct")["continuous"]
    assert yaml.safe_load(yaml.safe_dump(block)) == shipped


@needs_data
def test_points_are_every_measured_cap_and_lengths_the_pooled_histogram() -> None:
    f = read_model_file(LLAMA)
    block = variant_doc(shipped_doc(), "Llama-3.1-8B-Instruct")["continuous"]
    measured = llm_curve(f, "H100", 1, 75.0)
    assert [p[0] for p in block["points"]] == list(measured.caps)  # 8 .. 768, not only CAPS
    for stored, p in zip(block["points"], measured.points, strict=True):
        assert stored[1:] == pytest.approx([p.concurrency, p.tokens_per_s, p.power_w,
                                            p.itl_median_ms, p.itl_p99_ms], rel=1e-5)
    configs = llm_configurations(f, "H100", 1)
    pooled = np.sum([c["output_length_distribution"]["counts"] for _, c in configs], axis=0)
    assert block["output_lengths"]["counts"] == pooled.tolist()
    assert block["output_lengths"]["bins"] == [
        significant(b, POINT_DIGITS) for b in configs[0][1]["output_length_distribution"]["bins"]]


@needs_data
def test_continuous_without_an_llm_stage_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no stage has only LLM files; drop --continuous"):
        _build(_argv([SANA], (1, 2), tmp_path / "p.yaml", "--continuous"))


@needs_data
def test_output_lengths_from_a_trace_by_path(tmp_path: Path) -> None:
    """--output-lengths: the block's histogram holds every request of the trace (its
    GeneratedTokens column), the points stay ML.ENERGY's, and the points' source says
    where the lengths come from and what is assumed."""
    trace = tmp_path / "trace.csv"
    outputs = [1, 3, 3, 10, 44, 109, 250, 250, 999, 2000]
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(
        f"2023-11-16 18:15:{i:02d},{100 + i},{n}\n" for i, n in enumerate(outputs)))
    out = tmp_path / "p.yaml"
    doc = _build(_argv([LLAMA], (8,), out, "--continuous", "--output-lengths", str(trace)))
    block = doc["stages"][0]["variants"][0]["continuous"]
    bins, counts = block["output_lengths"]["bins"], block["output_lengths"]["counts"]
    assert sum(counts) == len(outputs) and bins[0] == 0.5 and bins[-1] == 2000.5
    # each request in the bin that holds it (whole tokens never on an edge)
    by_hand = np.histogram(outputs, bins=bins)[0]
    assert counts == by_hand.tolist()
    plain = _build(_argv([LLAMA], (8,), out, "--continuous"))
    assert block["points"] == plain["stages"][0]["variants"][0]["continuous"]["points"]
    why = doc["sources"][block["points_source"]]["description"]
    assert "trace.csv, column 'GeneratedTokens': 10 requests" in why and "assumed" in why
    with pytest.raises(ConfigError, match="add --continuous or drop --output-lengths"):
        _build(_argv([LLAMA], (8,), out, "--output-lengths", str(trace)))
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens,Tokens\n1,2,3\n")
    with pytest.raises(ProfileError, match="no column 'GeneratedTokens'"):
        _build(_argv([LLAMA], (8,), out, "--continuous", "--output-lengths", str(bad)))
