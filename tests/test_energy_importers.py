"""Tests of the perf stat and etrace2 log importers on synthetic logs."""

from __future__ import annotations

import pytest

from energy import (
    EnergyLogError,
    parse_etrace2,
    parse_perf_stat_intervals,
    total_energy_from_perf,
)

PERF_HUMAN = """\
#           time             counts   unit events
     1.001000000              12.34 Joules power/energy-pkg/
     1.001000000               3.00 Joules power/energy-ram/
     2.002000000              12.00 Joules power/energy-pkg/
     2.002000000               3.10 Joules power/energy-ram/
#           time             counts   unit events
     3.003000000              11.50 Joules power/energy-pkg/
     3.003000000               2.90 Joules power/energy-ram/
     3.503500000               6.00 Joules power/energy-pkg/
     3.503500000               1.50 Joules power/energy-ram/
"""


def test_perf_human_with_repeated_headers_and_partial_last_interval() -> None:
    rows = parse_perf_stat_intervals(PERF_HUMAN)
    assert [r.timestamp_s for r in rows] == [1.001, 2.002, 3.003, 3.5035]
    assert rows[0].interval_s == pytest.approx(1.001)
    assert rows[-1].interval_s == pytest.approx(0.5005)  # the partial last interval
    assert rows[-1].pkg_j == 6.0 and rows[-1].ram_j == 1.5
    r = total_energy_from_perf(PERF_HUMAN)
    assert r.cpu_package_j == pytest.approx(41.84)
    assert r.dram_j == pytest.approx(10.5)
    assert r.seconds == pytest.approx(3.5035)
    assert r.source == "perf-stat-log" and r.estimated is False


def test_perf_csv_format() -> None:
    text = (
        "1.000500000,10.25,Joules,power/energy-pkg/,1000500000,100.00,,\n"
        "1.000500000,<not supported>,Joules,power/energy-ram/,0,100.00,,\n"
        "2.001000000,9.75,Joules,power/energy-pkg/,1000500000,100.00,,\n"
        "2.001000000,<not supported>,Joules,power/energy-ram/,0,100.00,,\n"
        "2.300000000,2.00,Joules,power/energy-pkg/,299000000,100.00,,\n"
    )
    rows = parse_perf_stat_intervals(text)
    assert [r.pkg_j for r in rows] == [10.25, 9.75, 2.0]
    assert all(r.ram_j is None for r in rows)
    r = total_energy_from_perf(text)
    assert r.cpu_package_j == pytest.approx(22.0)
    assert r.dram_j is None  # never supported: not covered, rather than 0 J
    assert r.seconds == pytest.approx(2.3)


def test_perf_not_counted_gap_needs_allow_gaps() -> None:
    text = (
        "     1.0    5.00 Joules power/energy-pkg/\n"
        "     2.0  <not counted> Joules power/energy-pkg/\n"
        "     3.0    5.00 Joules power/energy-pkg/\n"
    )
    assert parse_perf_stat_intervals(text)[1].pkg_j is None
    with pytest.raises(EnergyLogError, match="missing in 1 of 3 intervals"):
        total_energy_from_perf(text)
    r = total_energy_from_perf(text, allow_gaps=True)
    assert r.cpu_package_j == 10.0 and "undercounted" in r.method


def test_perf_per_socket_summary_other_events_and_cut_off_line() -> None:
    text = (
        "#           time socket cpus             counts   unit events\n"
        "     1.001 S0        8              20.00 Joules power/energy-pkg/\n"
        "     1.001 S1        8              10.00 Joules power/energy-pkg/\n"
        "     1.001 S0        8              99.00 Joules power/energy-cores/\n"
        "     1.001 S0        8          1,234,567      cycles\n"
        "\n"
        " Performance counter stats for 'system wide':\n"
        "\n"
        "              30.00 Joules power/energy-pkg/\n"
        "       1.001 seconds time elapsed\n"
    )
    rows = parse_perf_stat_intervals(text)
    assert len(rows) == 1 and rows[0].pkg_j == 30.0  # sockets summed, cores/summary skipped
    cut = PERF_HUMAN + "     4.004000000              12."  # perf still writing
    assert len(parse_perf_stat_intervals(cut)) == 4


def test_perf_garbage_names_the_line() -> None:
    text = PERF_HUMAN.replace("     2.002000000               3.10 Joules", "oops, not perf")
    with pytest.raises(EnergyLogError, match="line 5"):
        parse_perf_stat_intervals(text)
    backwards = "  2.0  1.0 Joules power/energy-pkg/\n  1.0  1.0 Joules power/energy-pkg/\n"
    with pytest.raises(EnergyLogError, match="line 2: timestamp goes backwards"):
        parse_perf_stat_intervals(backwards)
    with pytest.raises(EnergyLogError, match="no power/energy-pkg/"):
        total_energy_from_perf("#  time counts unit events\n  1.0  5 cycles\n")


ETRACE2 = """\
# etrace2 per-interval energy
# interval=0.5s
0.5 sec pkg0=12.3 J pkg1=11.0 J dram0=2.1 J dram1=2.0 J
0.5 sec pkg0=12.7 J pkg1=11.0 J dram0=1.9 J dram1=2.0 J
0.25 sec pkg0=6.0 J pkg1=5.0 J dram0=1.0 J dram1=1.0 J
ENERGY=13.0
ELAPSED=1.25
"""


def test_etrace2_sums_intervals_not_final_energy_line() -> None:
    r = parse_etrace2(ETRACE2)
    assert r.cpu_package_j == pytest.approx(58.0)
    assert r.dram_j == pytest.approx(10.0)
    assert r.total_j == pytest.approx(68.0)  # not the 13 J of the last ENERGY= line
    assert r.seconds == pytest.approx(1.25)
    assert r.components["pkg1"] == pytest.approx(27.0)
    assert r.source == "etrace2-log" and r.estimated is False


def test_etrace2_variants() -> None:
    no_durations = "socket0: 10 J, socket1: 20 J\nSOCKET0=5J SOCKET1=5J\nELAPSED=2.0\n"
    r = parse_etrace2(no_durations)
    assert r.cpu_package_j == pytest.approx(40.0) and r.dram_j is None and r.seconds == 2.0
    watts = "2 s pkg0=50 W dram0=500 mJ\n"
    r = parse_etrace2(watts)
    assert r.cpu_package_j == pytest.approx(100.0) and r.dram_j == pytest.approx(0.5)


def test_etrace2_errors_name_the_line() -> None:
    garbage = ETRACE2.replace("0.25 sec", "hello world\n0.25 sec")
    with pytest.raises(EnergyLogError, match="line 5"):
        parse_etrace2(garbage)
    with pytest.raises(EnergyLogError, match="line 1: unknown name 'gpu0'"):
        parse_etrace2("0.5 sec gpu0=3 J\n")
    with pytest.raises(EnergyLogError, match="no interval lines"):
        parse_etrace2("# only a total\nENERGY=123.4\n")
    with pytest.raises(EnergyLogError, match="pkg0 appears twice"):
        parse_etrace2("1 s pkg0=1 J pkg0=2 J\n")
