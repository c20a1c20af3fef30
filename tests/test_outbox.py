"""The disk outbox: order, durability, the byte budget (samples go first, events never), power cuts."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from edge_agent.errors import AgentError
from edge_agent.outbox import Outbox

TOPIC = "antrean/serang-kota/kiosk-1/events/outage_started"


def body(n: int, pad: int = 0) -> dict:
    return {"seq": n, "pad": "x" * pad}


def size_of(topic: str, value: dict) -> int:
    return len(topic.encode()) + len(json.dumps(value, separators=(",", ":")).encode())


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "outbox.sqlite3")


def test_durability_pragmas(path):
    box = Outbox(path)
    assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_pending_is_oldest_first_and_ack_removes(path):
    box = Outbox(path)
    ids = [box.put(TOPIC, body(n), qos=1, retain=False, kind="event") for n in range(5)]
    assert ids == sorted(ids)
    items = box.pending(10)
    assert [i.body["seq"] for i in items] == [0, 1, 2, 3, 4]
    assert items[0].topic == TOPIC and items[0].qos == 1 and items[0].retain is False and items[0].kind == "event"
    assert [i.id for i in box.pending(2, after=ids[1])] == ids[2:4]
    box.ack(ids[0])
    box.ack_many([ids[2], ids[3], 999_999])  # an unknown id is fine: a sample dropped while in flight
    assert [i.body["seq"] for i in box.pending(10)] == [1, 4]
    assert box.count() == 2
    assert box.bytes() == 2 * size_of(TOPIC, body(1))


def test_survives_reopen_with_counters(path):
    box = Outbox(path, max_bytes=2000)
    kept = box.put(TOPIC, body(1), qos=1, retain=True, kind="change", session="boot/1")
    for n in range(40):
        box.put("antrean/x/health", body(n, 40), qos=1, retain=True, kind="sample")
    dropped, count, size = box.dropped, box.count(), box.bytes()
    assert dropped > 0
    box.close()
    again = Outbox(path, max_bytes=2000)
    assert (again.dropped, again.count(), again.bytes()) == (dropped, count, size)
    first = again.pending(1)[0]
    assert (first.id, first.retain, first.kind, first.session) == (kept, True, "change", "boot/1")


def test_budget_drops_oldest_samples_first_never_events(path):
    box = Outbox(path, max_bytes=2000)
    events = [box.put(TOPIC, body(n, 100), qos=1, retain=False, kind="event") for n in range(5)]
    samples = [box.put("antrean/x/health", body(n, 100), qos=1, retain=True, kind="sample") for n in range(10)]
    assert box.bytes() <= 2000 and not box.over_budget
    left = {i.id for i in box.pending(100)}
    assert set(events) <= left, "an event was dropped"
    kept_samples = [s for s in samples if s in left]
    assert kept_samples == samples[-len(kept_samples):], "not the oldest samples were dropped"
    assert box.dropped == len(samples) - len(kept_samples) > 0


def test_the_file_on_disk_stays_near_the_budget(path):
    """A day offline with a small budget: the database and its WAL stay near max_bytes, not SQLite's 4 MB WAL.

    SQLite checkpoints a WAL every 1000 pages by default and never shrinks it, which on its own is
    more than a small budget; found by tests/test_broker_outage_day.py (a 150 KB outbox, a 4 MB WAL).
    """
    budget = 256_000
    box = Outbox(path, max_bytes=budget)
    peak = 0
    for n in range(2000):  # about 12 times the budget goes through, as samples made and dropped
        box.put("antrean/x/health", body(n, 1500), qos=1, retain=True, kind="sample")
        if n % 10 == 0:
            box.put(TOPIC, body(n, 100), qos=1, retain=False, kind="event")
            box.ack_many([i.id for i in box.pending(5) if i.kind == "event"])
        peak = max(peak, file_bytes(path))
    assert box.dropped > 1500
    # SQLite's pages hold the rows with some room to spare, and the WAL a quarter of the budget on top.
    assert peak <= 2.5 * budget, f"outbox files reached {peak} bytes for a {budget}-byte budget"


def file_bytes(path) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def test_events_and_changes_over_budget_are_kept_and_reported(path, caplog):
    box = Outbox(path, max_bytes=1024)
    sample = box.put("antrean/x/health", body(0, 50), qos=1, retain=True, kind="sample")
    ids = [box.put(TOPIC, body(n, 200), qos=1, retain=False, kind="event" if n % 2 else "change")
           for n in range(8)]
    assert None not in ids
    assert box.over_budget and box.bytes() > 1024
    assert "over budget" in caplog.text
    left = [i.id for i in box.pending(100)]
    assert left == ids, "the sample should be gone and every event and change kept"
    assert sample not in left and box.dropped == 1
    # A new sample cannot fit beside them: it is dropped at once, not stored.
    assert box.put("antrean/x/health", body(9), qos=1, retain=True, kind="sample") is None
    assert box.dropped == 2 and box.count() == 8
    box.ack_many(ids)
    assert not box.over_budget and box.bytes() == 0


def test_state_reports_everything(path):
    box = Outbox(path, max_bytes=5000)
    box.put(TOPIC, body(1), qos=1, retain=False, kind="event")
    assert box.state() == {"count": 1, "bytes": size_of(TOPIC, body(1)), "max_bytes": 5000, "dropped": 0,
                           "over_budget": False}


@pytest.mark.parametrize("kwargs, error", [
    (dict(kind="telemetry"), ValueError),
    (dict(qos=3), ValueError),
    (dict(retain=1), TypeError),
    (dict(body=[1, 2]), TypeError),
    (dict(body={"t": float("nan")}), ValueError),
    (dict(body={"when": object()}), TypeError),
    (dict(topic="antrean/+/x"), ValueError),
    (dict(body={"pad": "x" * 5000}), ValueError),  # larger than the whole outbox
])
def test_programmer_errors_raise_at_once(path, kwargs, error):
    box = Outbox(path, max_bytes=4096)
    args = dict(topic=TOPIC, body={"a": 1}, qos=1, retain=False, kind="event") | kwargs
    with pytest.raises(error):
        box.put(args.pop("topic"), args.pop("body"), **args)
    assert box.count() == 0


def test_unopenable_path_names_the_path_and_fix(tmp_path):
    with pytest.raises(AgentError, match="cannot open outbox .*nowhere.*permissions"):
        Outbox(str(tmp_path / "nowhere" / "outbox.sqlite3"))


PUTTER = """
import sys
from edge_agent.outbox import Outbox
box = Outbox(sys.argv[1], max_bytes=200_000)
for n in range(100_000):
    kind = ("event", "change", "sample")[n % 3]
    row = box.put("antrean/x/events/e", {"n": n, "pad": "y" * 50}, qos=1, retain=False, kind=kind)
    if n % 7 == 0:
        box.ack(row)
    print(row, kind, flush=True)
"""


def test_power_cut_loses_no_returned_put(path):
    """SIGKILL mid-stream: every put that returned (and was not acked) is on disk, and the file is sound."""
    proc = subprocess.Popen([sys.executable, "-c", PUTTER, path], stdout=subprocess.PIPE, text=True)
    returned = []
    for line in proc.stdout:
        returned.append(line.split())
        if len(returned) == 400:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    proc.stdout.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    on_disk = {row[0] for row in db.execute("SELECT id FROM outbox")}
    must_have = {int(row) for n, (row, kind) in enumerate(returned) if kind != "sample" and n % 7 != 0}
    assert must_have <= on_disk
    box = Outbox(path, max_bytes=200_000)
    assert box.count() == len(on_disk)


def test_a_failing_disk_is_an_agent_error_and_changes_nothing(path):
    box = Outbox(path)
    box.put(TOPIC, body(1), qos=1, retain=False, kind="event")
    box._db.execute("PRAGMA query_only = ON")  # every write now fails, as on a full or read-only disk
    with pytest.raises(AgentError, match="cannot write.*free space"):
        box.put(TOPIC, body(2), qos=1, retain=False, kind="event")
    assert (box.count(), box.bytes()) == (1, size_of(TOPIC, body(1)))
    box._db.execute("PRAGMA query_only = OFF")
    assert box.put(TOPIC, body(3), qos=1, retain=False, kind="event") is not None
    assert [i.body["seq"] for i in box.pending(10)] == [1, 3]
