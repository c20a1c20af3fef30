"""Issue 7: a 12-hour broker outage, compressed in time, with an agent restart and a power cut in it.

Only real parts: Mosquitto with the shipped config and ACL (tests/support/broker.py); the office's two
kiosks as processes (``python -m kiosk run``, presses piped to stdin, tickets in their SQLite
ledgers); each kiosk's edge agent as a process (``python -m edge_agent run``); and the central
server that service A needs, a small HTTP server on loopback that the agents probe.

Time is compressed by configuration alone: the agents' probe, health and publish intervals are
the defaults (10 s, 60 s, 300 s) divided by COMPRESSION, so an office hour passes in HOUR_S real
seconds and the agents make as many messages as in twelve real hours. What the configuration does
not compress runs at its real pace: the kiosks' clocks and burst window, the agent's 1 s poll of
the ledger and its loop's 50 ms least wait (so it probes and reads health less often than twelve
real hours would, while publishing as often), the MQTT reconnect back-off.

kiosk-1's agent has the default 5 MB outbox, which holds the whole day: nothing may be dropped.
kiosk-2's has a tight one, so the oldest samples must go: only samples, and each one counted.

The day, in office hours after the broker stops (a "reboot" gives the agents a new kernel boot id
through a private mount namespace, when the test runs as root with unshare):

    0     the broker stops; presses go on at PRESSES_PER_TICK per kiosk every 5 office minutes
    2     the central server goes down; at 3.5 it is back
    5     both agents are SIGKILLed and started again
    7.5   the central server goes down again
    8     power cut: kiosks and agents SIGKILLed at once, then all started again after a reboot
    9     the central server is back
    12    the broker is back; the test waits until both outboxes have drained

A receiver dedupes by (boot_id, seq), as docs/mqtt.md tells receivers to. The test prints one line
``SCENARIO {json}`` with its counts for benchmarks/report.py (``pytest -s`` shows it).
"""

import datetime as dt
import json
import sqlite3
import time
from collections import Counter

import pytest
from support.broker import Broker, Collector
from support.outage_lab import (
    COMPRESSION,
    DEFAULT_INTERVALS,
    DEFAULT_OUTBOX,
    MAX_IN_FLIGHT,
    OFFICE,
    OUTAGE_HOURS,
    QUOTAS,
    TIGHT_OUTBOX,
    Central,
    Day,
    Row,
    Station,
    can_fake_a_reboot,
    key_of,
    made_at,
)

from edge_agent.kiosk_events import relay_kind
from kiosk.seam import KioskEvent, parse_payload


def first_copies(messages, station) -> tuple[list, int]:
    """What a receiver keeps: the first copy of each (boot_id, seq); and how many copies it threw away."""
    kept, seen, copies = [], set(), 0
    for m in messages:
        if not m.topic.startswith(station.base + "/") or m.topic.endswith("/status"):
            continue
        body = json.loads(m.payload)
        copies += 1
        if key_of(body) not in seen:
            seen.add(key_of(body))
            kept.append((m, body))
    return kept, copies - len(kept)


def check_order_per_boot(kept) -> None:
    last = {}
    for _, body in kept:
        boot, seq = key_of(body)
        assert seq > last.get(boot, 0), f"seq {seq} of boot {boot} arrived after seq {last[boot]}"
        last[boot] = seq


def check_accounting(station, kept) -> dict:
    """Every message made either arrived, is still waiting (made at the very end), or was a counted drop."""
    received = {key_of(b): (m, b) for m, b in kept}
    rows = station.watch.rows
    made = Counter()
    for boot, seq in set(rows) | set(received):
        made[boot] = max(made[boot], seq)
    all_made = {(boot, seq) for boot, top in made.items() for seq in range(1, top + 1)}
    missing = all_made - set(received) - station.left
    for key in missing & set(rows):
        assert rows[key].kind == "sample", f"{rows[key].kind} {rows[key].topic} {key} never arrived"
    dropped = station.watch.dropped
    assert len(missing) <= dropped <= len(missing) + MAX_IN_FLIGHT, (len(missing), dropped)
    for key in station.left:
        assert made_at(rows[key].body) > station.day.up_at, f"{key} of the backlog is still in the outbox"
    for key, row in rows.items():
        if key in received:
            check_as_made(row, *received[key], station.day)
    return {"made": len(all_made), "missing": len(missing), "dropped": dropped, "left": len(station.left)}


def check_as_made(row: Row, message, body: dict, day: Day) -> None:
    """Sent exactly as made: same topic, same body and original time; marked historical if it waited."""
    assert message.topic == row.topic
    assert {k: v for k, v in body.items() if k != "historical"} == row.body
    if day.down_at <= made_at(row.body) <= day.up_at:
        props = list(getattr(message.properties, "UserProperty", []))
        assert body.get("historical") is True and ("historical", "1") in props, (row.topic, body)


def check_kiosk_events(station, kept) -> dict:
    """Each kiosk event the agent relays arrived once after deduping by kiosk_event_id, with the kiosk's time."""
    expected = [e for e in ledger_events(station) if e["id"] > station.cursor0 and relay_kind(as_event(e)) is not None]
    relayed = {}
    twice = 0
    for m, body in kept:
        if "kiosk_event_id" in body:
            first = relayed.setdefault(body["kiosk_event_id"], (m, body))
            if first[1] is not body:
                twice += 1  # re-relayed after a SIGKILL between the relay and the cursor write
                assert first[1]["boot_id"] != body["boot_id"], f"relayed twice by one run: {body}"
                assert {k: v for k, v in body.items() if k not in ENVELOPE} == \
                    {k: v for k, v in first[1].items() if k not in ENVELOPE}
    assert sorted(relayed) == [e["id"] for e in expected], "relayed events differ from the ledger's"
    for event in expected:
        message, body = relayed[event["id"]]
        kind, _ = relay_kind(as_event(event))
        assert message.topic == f"{station.base}/events/{kind}"
        assert round(dt.datetime.fromisoformat(body["kiosk_at"]).timestamp() * 1000) == event["at_ms"]
        assert {k: body[k] for k in event["data"]} == event["data"]
    kinds = Counter(e["kind"] for e in expected)
    return {"kiosk_events_relayed": len(expected), "relayed_twice": twice, **{f"ledger_{k}": n for k, n in
                                                                               sorted(kinds.items())}}


ENVELOPE = ("boot_id", "seq", "at", "historical")


def as_event(row: dict) -> KioskEvent:
    """A row of ``ledger_events`` as the agent's follower reads it."""
    return KioskEvent(row["id"], dt.datetime.fromisoformat(row["at"]), parse_payload(row["kind"], row["data"]))


def ledger_events(station) -> list[dict]:
    db = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    try:
        rows = db.execute("SELECT id, at, kind, data FROM events ORDER BY id").fetchall()
    finally:
        db.close()
    return [{"id": i, "at_ms": at, "at": dt.datetime.fromtimestamp(at / 1000, dt.timezone.utc).isoformat(),
             "kind": kind, "data": json.loads(data)} for i, at, kind, data in rows]


def check_ledger(station) -> dict:
    db = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        dupes = db.execute("SELECT service, service_day, number, COUNT(*) FROM tickets "
                           "GROUP BY 1, 2, 3 HAVING COUNT(*) > 1").fetchall()
        assert dupes == [], dupes
        for service, day, count, highest in db.execute("SELECT service, service_day, COUNT(*), MAX(number) "
                                                       "FROM tickets GROUP BY 1, 2"):
            assert count == highest <= QUOTAS[service], (service, day, count, highest)
        tickets = db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        slips = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'horizon_full'").fetchone()[0]
    finally:
        db.close()
    return {"tickets": tickets, "full_slips": slips}


def outage_volume(station, kept) -> dict:
    """What the agents made while the broker was away, by topic and kind."""
    day = station.day
    bodies = {key_of(b): (m.topic, b) for m, b in kept}
    bodies.update({k: (r.topic, r.body) for k, r in station.watch.rows.items()})
    in_outage = {k: topic for k, (topic, b) in bodies.items() if day.down_at <= made_at(b) <= day.up_at}
    kinds = Counter(station.watch.rows[k].kind for k in in_outage if k in station.watch.rows)
    topics = Counter(topic[len(station.base) + 1:].split("/")[0] for topic in in_outage.values())
    events = Counter(topic.rsplit("/", 1)[1] for topic in in_outage.values() if "/events/" in topic)
    return {"made_in_outage": len(in_outage), "health_in_outage": topics["health"],
            "network_in_outage": topics["network"], "events_in_outage": topics["events"],
            "changes_in_outage": kinds["change"], "samples_in_outage": kinds["sample"],
            "event_kinds_in_outage": dict(sorted(events.items()))}


def check_newest_state(station, kept) -> None:
    """Drops take the oldest samples: the newest state made in the outage arrived."""
    day, received = station.day, {key_of(b) for _, b in kept}
    for name in ("health", "network"):
        topic = f"{station.base}/{name}"
        made = [r for r in station.watch.rows.values() if r.topic == topic and made_at(r.body) <= day.up_at]
        newest = max(made, key=lambda r: made_at(r.body))
        assert key_of(newest.body) in received, f"the newest {name} of the outage never arrived"


def check_retained(broker, station, kept) -> None:
    """The broker's retained health and network are the newest the agent made, not an old backlog copy."""
    late = Collector(broker, "homeassistant", [f"{station.base}/health", f"{station.base}/network"])
    try:
        retained = late.wait_for(lambda ms: len(ms) >= 2, what="the retained states")
    finally:
        late.close()
    for message in retained:
        newest = [b for m, b in kept if m.topic == message.topic][-1]
        assert message.retain and json.loads(message.payload)["seq"] == newest["seq"]
        assert json.loads(message.payload)["boot_id"] == newest["boot_id"]


# ------------------------------------------------------------------ the test

@pytest.fixture
def lab(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    central = Central()
    parts = {"broker": broker, "central": central, "stations": [], "receiver": None}
    yield parts
    for s in parts["stations"]:
        for p in s.processes():
            if p.alive:
                p.kill()
        if s.watch is not None:
            s.watch.close()
    if parts["receiver"] is not None:
        parts["receiver"].close()
    central.down()
    broker.kill()


def test_a_day_without_the_broker_loses_no_event_and_drops_only_counted_samples(lab, tmp_path):
    started = time.monotonic()
    broker, central = lab["broker"], lab["central"]
    fake_reboot = can_fake_a_reboot(tmp_path)
    receiver = lab["receiver"] = Collector(
        broker, "technician", [f"antrean/{OFFICE}/+/{leaf}" for leaf in ("events/#", "health", "network",
                                                                         "announcement", "status")],
        persistent=True, client_id="outage-day-receiver")
    stations = lab["stations"] = [
        Station(tmp_path, "kiosk-1", broker, central, DEFAULT_OUTBOX, fake_reboot, seed="kiosk-1"),
        Station(tmp_path, "kiosk-2", broker, central, TIGHT_OUTBOX, fake_reboot, seed="kiosk-2")]
    day = Day(broker, central, stations, receiver)
    for s in stations:
        s.day = day
    day.morning()
    live = len(receiver.messages)
    day.outage()
    drain_s = day.wait_drained()
    day.evening()

    messages = list(receiver.messages)
    check_live_morning(messages[:live], day)
    results = {}
    for s in stations:
        kept, duplicates = first_copies(messages, s)
        check_order_per_boot(kept)
        counts = {"outbox_max_bytes": s.outbox_max_bytes, **check_accounting(s, kept),
                  **check_kiosk_events(s, kept), **check_ledger(s), **outage_volume(s, kept),
                  "delivered": len(kept), "duplicate_copies": duplicates, "presses": s.presses,
                  "outbox_peak_bytes": s.watch.peak_bytes, "outbox_peak_db_bytes": s.watch.peak_db_bytes,
                  "outbox_peak_wal_bytes": s.watch.peak_wal_bytes,
                  "outbox_looks": s.watch.looks, "agent_runs": len(s.agent_runs),
                  "agent_loop_turns": sum(p.notify.pings for p in s.agent_runs)}
        assert s.watch.over_budget == [] and s.watch.peak_bytes <= s.outbox_max_bytes
        # On disk SQLite's pages and the WAL come on top of the budget, in proportion (edge_agent/outbox.py;
        # a checkpoint waits while a reader, such as this test, holds the WAL).
        assert s.watch.peak_db_bytes + s.watch.peak_wal_bytes <= 3 * s.outbox_max_bytes, counts
        check_newest_state(s, kept)
        check_retained(broker, s, kept)
        check_day_happened(counts, fake_reboot)
        results[s.kiosk_id] = counts
    roomy, tight = results["kiosk-1"], results["kiosk-2"]
    assert roomy["dropped"] == 0 and roomy["missing"] == 0, "samples dropped with room to spare"
    assert tight["dropped"] > 0 and tight["outbox_peak_bytes"] > 0.9 * TIGHT_OUTBOX, "the tight outbox never filled"
    print_scenario(results, day, drain_s, fake_reboot, time.monotonic() - started)


def check_live_morning(messages, day: Day) -> None:
    """A message made while the agent was connected went out at once and is not marked historical."""
    live = [json.loads(m.payload) for m in messages if not m.topic.endswith("/status")]
    live = [b for b in live if made_at(b) >= day.connected_at]
    assert live and not any(b.get("historical") for b in live), "a message sent while connected is historical"


def check_day_happened(counts: dict, fake_reboot: bool) -> None:
    """The day was the one described: an office's tickets, the outages, the restarts, 12 hours of samples."""
    nominal = OUTAGE_HOURS * 3600 / DEFAULT_INTERVALS["publish_interval_s"]
    kinds = counts["event_kinds_in_outage"]
    assert counts["tickets"] >= 250, counts
    assert kinds.get("outage_started", 0) >= 2 and kinds.get("outage_ended", 0) >= 2, kinds
    assert kinds.get("quota_exhausted", 0) >= 6 and kinds.get("burst_alarm", 0) >= 1, kinds
    assert kinds.get("unclean_boot", 0) == (1 if fake_reboot else 0), kinds
    # Restarts cost a few samples (a start is a change); no more than a sample per publish interval.
    for name in ("health_in_outage", "network_in_outage"):
        assert 0.8 * nominal <= counts[name] <= nominal + counts["changes_in_outage"], (name, counts)
    assert counts["agent_runs"] == 3


def print_scenario(results: dict, day: Day, drain_s: float, fake_reboot: bool, wall_s: float) -> None:
    total = {key: sum(r[key] for r in results.values()) for key in (
        "presses", "tickets", "full_slips", "kiosk_events_relayed", "made", "made_in_outage", "delivered",
        "duplicate_copies", "relayed_twice", "dropped", "missing")}
    summary = {"scenario": "broker_outage_day", "office_hours": OUTAGE_HOURS, "compression": COMPRESSION,
               "kiosks": len(results), "agent_restarts": day.agent_restarts, "power_cuts": day.power_cuts,
               "reboot_with_new_boot_id": fake_reboot, "drain_s": round(drain_s, 2), "wall_s": round(wall_s, 1),
               "outage_wall_s": round((day.up_at - day.down_at).total_seconds(), 1), **total,
               "per_kiosk": results}
    print("SCENARIO " + json.dumps(summary, sort_keys=True))
