"""The outage log on disk: periods open and close with transitions, survive restarts, are pruned."""

import sqlite3

import pytest
from support.clock import ManualClock

from edge_agent.network import DEGRADED, DOWN, MAINTENANCE, UNKNOWN, UP, NetworkMonitor, Transition
from edge_agent.outages import OutageLog
from edge_agent.probes import ProbeResult, Target

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
DAY = 86400.0


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "outages.sqlite3"


def tr(target, a, b, at, reason="r"):
    return Transition(target, a, b, at, reason)


def test_an_outage_opens_when_down_and_closes_when_up(path, clock):
    log = OutageLog(path, clock=clock)
    log.record([tr("central", UP, DOWN, T0, "3 failed rounds")], cause="central network")
    clock.now = T0 + 100
    (row,) = log.open_periods()
    assert (row["kind"], row["target"], row["open"]) == ("outage", "central", True)
    assert row["start"] == "2026-11-18T11:06:40Z"
    assert row["duration_s"] == 100 and row["cause"] == "central network"
    log.record([tr("central", DOWN, DEGRADED, T0 + 900, "answering again")])
    (row,) = log.history()
    assert (row["end"], row["duration_s"], row["open"]) == ("2026-11-18T11:21:40Z", 900, False)
    assert row["end_reason"] == "degraded: answering again" and log.open_periods() == []
    log.close()


def test_maintenance_is_recorded_as_such_and_ends_an_outage(path, clock):
    log = OutageLog(path, clock=clock)
    log.record([tr("siak", UP, DOWN, T0)], cause="central network")
    log.record([tr("siak", DOWN, MAINTENANCE, T0 + 60, "maintenance until ...: SIAK upgrade")])
    log.record([tr("siak", MAINTENANCE, UP, T0 + 3600)])
    newest, oldest = log.history()
    assert (newest["kind"], newest["duration_s"], newest["cause"]) == ("maintenance", 3540, None)
    assert newest["reason"] == "maintenance until ...: SIAK upgrade"
    assert (oldest["kind"], oldest["duration_s"]) == ("outage", 60)


def test_an_open_outage_survives_a_restart_until_the_target_is_seen_up(path, clock):
    log = OutageLog(path, clock=clock)
    log.record([tr("gw", UP, DOWN, T0)], cause="local line or provider (gateway unreachable)")
    log.close()
    log = OutageLog(path, clock=clock)  # the agent restarts: its machines start unknown
    log.record([tr("gw", UNKNOWN, DOWN, T0 + 500)])  # still down: the outage keeps its start
    assert [r["start"] for r in log.open_periods()] == ["2026-11-18T11:06:40Z"]
    log.close()
    log = OutageLog(path, clock=clock)
    log.record([tr("gw", UNKNOWN, UP, T0 + 7200)])
    (row,) = log.history()
    assert row["duration_s"] == 7200 and row["cause"] == "local line or provider (gateway unreachable)"
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_cause_judged_too_early_is_settled_by_the_next_round(path, clock):
    """The central server's connects fail a round before the gateway's pings do."""
    log = OutageLog(path, clock=clock)
    log.record([tr("old", UP, DOWN, T0 - 3600)], cause="DNS resolver")
    log.record([tr("central", UP, DOWN, T0)], cause="central network")
    log.record([tr("gw", UP, DOWN, T0 + 12)], cause="local line or provider (gateway unreachable)")
    causes = {r["target"]: r["cause"] for r in log.open_periods()}
    assert causes == {"old": "DNS resolver", "central": "local line or provider (gateway unreachable)",
                      "gw": "local line or provider (gateway unreachable)"}


def test_old_rows_are_pruned_and_the_log_is_bounded(path, clock):
    log = OutageLog(path, clock=clock, max_rows=5)
    clock.now = T0 - 500 * DAY
    log.record([tr("a", UP, DOWN, clock.now), tr("a", DOWN, UP, clock.now + 60)])
    log.record([tr("open", UP, DOWN, clock.now)])
    clock.now = T0
    for i in range(6):
        log.record([tr("b", UP, DOWN, T0 + i * 100), tr("b", DOWN, UP, T0 + i * 100 + 50)])
    assert log.prune() == 2  # the 500-day-old closed row, then the oldest beyond five closed rows
    rows = log.history(limit=100)
    assert [r["target"] for r in rows if r["open"]] == ["open"]  # an open outage is never pruned
    assert len([r for r in rows if not r["open"]]) == 5 and log.history(limit=100, target="a") == []


def test_record_round_takes_the_verdicts_cause(path):
    clock = ManualClock(T0)
    gw = Target(name="gw", kind="icmp", role="gateway", host="10.0.0.1")
    monitor = NetworkMonitor([gw], probe=lambda t, at: ProbeResult(ok=False, at=at, detail="0/5"), clock=clock)
    log = OutageLog(path, clock=clock)
    for _ in range(3):
        clock.now += 10
        log.record_round(monitor.run_round())
    (row,) = log.open_periods()
    assert row["cause"] == "local line or provider (gateway unreachable)" and row["start"] == "2026-11-18T11:07:10Z"
