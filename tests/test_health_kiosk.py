"""The kiosk's part of the health payload, read from a real ledger without disturbing the kiosk."""

from pathlib import Path

import pytest
from support import FakeSystemClock, at
from support.liveness import kiosk_alive

from edge_agent.health import collect_health, health_changed
from edge_agent.health_kiosk import kiosk_health
from edge_agent.health_sources import Unavailable
from kiosk import servicedays
from kiosk.ledger import Ledger

LAPTOP_ROOT = str(Path(__file__).parent / "fixtures" / "health" / "laptop")


@pytest.fixture
def cfg(make_config):
    return make_config()


@pytest.fixture
def system():
    return FakeSystemClock(at("2026-11-23 10:00"))


@pytest.fixture
def kiosk_ledger(cfg):
    """The kiosk's own, writable ledger, as kiosk/app.py opens it, with the kiosk alive (lock and heartbeat)."""
    ledger = Ledger(f"{cfg.data_dir}/ledger.sqlite3", cfg.office_id, cfg.tz)
    with kiosk_alive(cfg.data_dir):
        yield ledger
    ledger.close()


def issue(cfg, ledger, code, when):
    days = servicedays.booking_days(cfg.calendar, when)
    return ledger.issue_ticket(cfg.service(code), days, when)


def test_counts_printer_and_paper_warning(cfg, kiosk_ledger, system):
    for minute in (1, 2):
        issue(cfg, kiosk_ledger, "A", at(f"2026-11-23 09:0{minute}"))
    kiosk_ledger.set_state("printer", "paper_near_end", at("2026-11-23 09:03"))
    state = kiosk_health(cfg, now=system)
    a, b = state["services"]
    assert (a["code"], a["taken_today"], a["quota_today"], a["remaining_today"]) == ("A", 2, 3, 1)
    assert (b["code"], b["taken_today"], b["remaining_today"]) == ("B", 0, 150)
    assert (state["printer"], state["paper_warning"]) == ("paper_near_end", True)
    assert state["clock"] == {"suspect": False, "reason": None}
    assert state["now"] == "2026-11-23T10:00:00+07:00"


def test_kiosk_in_the_health_payload(cfg, kiosk_ledger, system):
    issue(cfg, kiosk_ledger, "A", at("2026-11-23 09:00"))
    kiosk_ledger.set_state("printer", "ok", at("2026-11-23 09:00"))
    before = collect_health(cfg, root=LAPTOP_ROOT, run=lambda argv, timeout: "", now=system)
    assert before["kiosk"]["paper_warning"] is False and not [a for a in before["alerts"] if "printer" in a]
    kiosk_ledger.set_state("printer", "paper_near_end", at("2026-11-23 09:30"))
    after = collect_health(cfg, root=LAPTOP_ROOT, run=lambda argv, timeout: "", now=system)
    assert "printer_paper_near_end" in after["alerts"]
    assert health_changed(before, after)


def test_suspect_clock_and_owed_prints(cfg, kiosk_ledger, system):
    ticket = issue(cfg, kiosk_ledger, "B", at("2026-11-23 09:00"))
    kiosk_ledger.mark_print_failed(ticket.id, "paper out", at("2026-11-23 09:00"))
    system.set(at("2026-11-20 08:00"))  # rebooted without network: days behind the ledger
    health = collect_health(cfg, root=LAPTOP_ROOT, run=lambda argv, timeout: "", now=system)
    state = health["kiosk"]
    assert state["clock"]["suspect"] is True and state["now"] == "2026-11-23T09:00:00+07:00"
    assert state["owed_prints"] == ["B-001 2026-11-23"]
    assert {"clock_suspect", "prints_owed"} <= set(health["alerts"])


def test_no_ledger_yet(cfg, system):
    with pytest.raises(Unavailable, match="no ledger"):
        kiosk_health(cfg, now=system)


def test_unreadable_ledger_is_a_reason(cfg, system):
    with open(f"{cfg.data_dir}/ledger.sqlite3", "wb") as f:
        f.write(b"this is not a database, the SD card ate it" * 100)
    health = collect_health(cfg, root=LAPTOP_ROOT, run=lambda argv, timeout: "", now=system)
    assert health["kiosk"] is None and "cannot read ledger" in health["unavailable"]["kiosk"]


def test_reads_committed_state_while_the_kiosk_writes(cfg, kiosk_ledger, system):
    issue(cfg, kiosk_ledger, "A", at("2026-11-23 09:00"))
    db = kiosk_ledger._db
    db.execute("BEGIN IMMEDIATE")  # the kiosk is mid-write, holding the write lock
    db.execute("UPDATE tickets SET status = 'printed'")
    state = kiosk_health(cfg, now=system)  # returns at once with the last committed state
    db.execute("COMMIT")
    assert state["services"][0]["taken_today"] == 1
    issue(cfg, kiosk_ledger, "A", at("2026-11-23 09:05"))  # and nothing of the reader lingers
    assert kiosk_health(cfg, now=system)["services"][0]["taken_today"] == 2
