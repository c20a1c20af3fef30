"""A kiosk in a crash loop must not flood the uplink with kiosk_process events (never dropped, so a long
loop would fill the disk outbox): the first changes are said at once, then at most one event per
interval with the count of changes and restarts, and the state it settles in.

The agent's part against a real Mosquitto, with a stand-in kiosk that really takes and drops the data
directory's lock and beats (tests/support/liveness.py); the debouncing on a fake clock."""

import datetime as dt
import json

import pytest
from support import FakeSystemClock, at
from support.broker import base
from support.liveness import kiosk_alive
from test_agent import central, configs  # noqa: F401 (fixtures)

from edge_agent.agent import Agent

BASE = base()
TOPIC = f"{BASE}/events/kiosk_process"
CRASHES = 20


@pytest.fixture
def watch(broker):
    from support.broker import Collector

    c = Collector(broker, "technician", [f"{BASE}/events/#"])
    yield c
    c.close()


def crash_loop(agent, data_dir: str, crashes: int) -> None:
    """The kiosk starts and dies ``crashes`` times, the agent looking at each step as its loop would."""
    for _ in range(crashes):
        with kiosk_alive(data_dir):  # takes the real lock and beats; leaving drops it without "stopped"
            agent.watch_kiosk()
        agent.watch_kiosk()


def events_until_marker(agent, watch) -> list[dict]:
    """Every kiosk_process event the agent queued so far: a marker queued after them arrives after them."""
    agent.event("test_marker", {})
    watch.wait_for(lambda ms: any(m.topic.endswith("/test_marker") for m in ms), what="the marker")
    return [json.loads(p) for p in watch.payloads(TOPIC)]


def test_a_crash_loop_sends_two_events_not_one_per_change(configs, watch):  # noqa: F811
    agent = Agent(*configs)
    agent.link.start()
    try:
        assert agent.link.wait_connected(10)
        crash_loop(agent, configs[0].data_dir, CRASHES)
        said = events_until_marker(agent, watch)
    finally:
        agent.close()
    # The first crash and the restart after it, at once; the rest wait for the interval's summary.
    assert len(said) == 2, f"{len(said)} kiosk_process events for {2 * CRASHES - 1} changes"
    assert [(e["state"], e["was"], e["changes"]) for e in said] == [
        ("not_running", "running", 1), ("running", "not_running", 1)], said


def test_the_summary_counts_the_restarts_and_says_the_settled_state(configs, watch):  # noqa: F811
    from edge_agent.agent import FLAP_INTERVAL_S

    INTERVAL = dt.timedelta(seconds=FLAP_INTERVAL_S)  # noqa: N806
    clock = FakeSystemClock(at("2026-11-23 09:00"))
    agent = Agent(*configs, monotonic=clock.monotonic)
    agent.link.start()
    data_dir = configs[0].data_dir
    try:
        assert agent.link.wait_connected(10)
        crash_loop(agent, data_dir, CRASHES)
        with kiosk_alive(data_dir):  # systemd's last restart holds: the kiosk settles, running
            agent.watch_kiosk()
            clock.advance(INTERVAL)
            agent.watch_kiosk()  # the interval ended: one summary
            clock.advance(INTERVAL)
            agent.watch_kiosk()  # a quiet interval: nothing
            said = events_until_marker(agent, watch)
            clock.advance(INTERVAL)
        agent.watch_kiosk()  # quiet again: a new crash is said at once
        after = events_until_marker(agent, watch)
    finally:
        agent.close()
    assert len(said) == 3, said
    summary = said[2]
    # The first look is silent (a kiosk found running is no news): 2 * CRASHES - 1 changes in the loop and
    # the settling restart, less the two said at once; CRASHES restarts, less the one said at once.
    assert (summary["state"], summary["was"], summary["fault"]) == ("running", "running", False), summary
    assert (summary["changes"], summary["restarts"]) == (2 * CRASHES - 2, CRASHES - 1), summary
    assert [(e["state"], e["changes"]) for e in after[3:]] == [("not_running", 1)], after


def test_health_does_not_follow_every_change_of_a_crash_loop(configs, broker):  # noqa: F811
    """Health is a state change (never dropped) too: a held change does not force it out."""
    from support.broker import Collector

    from kiosk.ledger import Ledger

    kiosk = configs[0]
    Ledger(kiosk.ledger_path, kiosk.office_id, kiosk.tz).close()  # the kiosk's ledger, read by health
    step = dt.timedelta(seconds=2)  # the agent looks every second; systemd restarts within 2 s
    clock = FakeSystemClock(at("2026-11-23 09:00"))
    agent = Agent(*configs, monotonic=clock.monotonic)
    seen = Collector(broker, "technician", [f"{BASE}/health", f"{BASE}/events/#"])
    agent.link.start()
    try:
        assert agent.link.wait_connected(10)
        for _ in range(CRASHES):  # 80 s of a crash loop
            with kiosk_alive(configs[0].data_dir):
                clock.advance(step)
                agent.watch_kiosk()
            clock.advance(step)
            agent.watch_kiosk()
        said = events_until_marker(agent, seen)
        health = seen.payloads(f"{BASE}/health")
    finally:
        agent.close()
        seen.close()
    assert len(said) == 3, said  # the crash and the restart at once, then one summary after 60 s
    assert len(health) <= len(said) + 1, f"{len(health)} health changes for {len(said)} kiosk_process events"


def test_a_long_crash_loop_costs_one_event_per_interval():
    """Pure logic: a day of a kiosk restarted every 3 s and crashing 2 s later."""
    from edge_agent.agent import FLAP_INTERVAL_S, ProcessReports

    now = [0.0]
    reports = ProcessReports(monotonic=lambda: now[0])
    said, state, changes = [], "running", 0
    while now[0] < 86400:
        now[0] += 1.0
        change = None
        if now[0] % 5 in (0, 3):  # crashes at 0, back at 3
            was, state = state, "not_running" if state == "running" else "running"
            change, changes = {"state": state, "was": was, "fault": state != "running"}, changes + 1
        report = reports.offer(change)
        if report is not None:
            said.append((now[0], report))
    now[0] += FLAP_INTERVAL_S  # it settles: the last interval's summary
    said.append((now[0], reports.offer(None)))
    assert len(said) <= 2 + 86400 / FLAP_INTERVAL_S + 1  # not_running and running once, then summaries
    assert sum(r["changes"] for _, r in said) == changes  # every change is counted in some event
    assert said[-1][1]["state"] == state
    gaps = [b - a for (a, _), (b, _) in zip(said[2:], said[3:], strict=False)]
    assert min(gaps) >= FLAP_INTERVAL_S


def test_a_new_kind_of_fault_in_a_crash_loop_is_said_at_once():
    from edge_agent.agent import ProcessReports

    now = [0.0]
    reports = ProcessReports(monotonic=lambda: now[0])
    steps = [("not_running", "running"), ("running", "not_running"), ("not_running", "running"),
             ("running", "not_running"), ("hung", "running")]
    said = []
    for i, (state, was) in enumerate(steps):
        now[0] = 2.0 * i
        report = reports.offer({"state": state, "was": was, "fault": state != "running"})
        said.append(report and (report["state"], report["was"], report["changes"], report["restarts"]))
    assert said == [("not_running", "running", 1, 0), ("running", "not_running", 1, 1), None, None,
                    ("hung", "running", 3, 1)]
