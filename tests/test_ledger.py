"""Ledger: quota-bound, gap-free numbering; quota changes; void; events; durability settings."""

import datetime as dt
import sqlite3
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import JAKARTA, at

from kiosk import servicedays
from kiosk.config import Calendar, Service
from kiosk.errors import LedgerError, QuotaError, TicketNotFound
from kiosk.ledger import Ledger
from kiosk.seam.events import PrinterState, RequestDone, UnknownEvent
from kiosk.seam.states import PrinterStatus, RequestKind

A = Service("A", "Perekaman e-KTP", 2, None, None, ())
B = Service("B", "Kartu Keluarga", 150, None, None, ())
MON = dt.date(2026, 11, 23)


def test_durability_pragmas(ledger):
    assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_numbers_run_per_service_per_day_and_spill_to_next_day(ledger):
    days = [MON, MON + dt.timedelta(days=1)]
    labels = [(t.label, t.service_day) for t in
              (ledger.issue_ticket(s, days, at("2026-11-23 08:00")) for s in (A, A, B, A))]
    assert labels == [("A-001", MON), ("A-002", MON), ("B-001", MON), ("A-001", days[1])]


def test_people_before_counts_earlier_non_void_tickets(ledger):
    first = ledger.issue_ticket(B, [MON], at("2026-11-23 08:00"))
    ledger.issue_ticket(B, [MON], at("2026-11-23 08:01"))
    ledger.void("B", MON, 1, at("2026-11-23 08:02"))
    third = ledger.issue_ticket(B, [MON], at("2026-11-23 08:03"))
    assert (first.people_before, third.people_before, third.number) == (0, 1, 3)


def test_horizon_full_returns_none_and_records_event(ledger):
    for _ in range(2):
        ledger.issue_ticket(A, [MON], at("2026-11-23 08:00"))
    assert ledger.issue_ticket(A, [MON], at("2026-11-23 08:05")) is None
    kinds = [e["kind"] for e in ledger.events_since(0)]
    assert kinds == ["ticket_issued", "ticket_issued", "day_full", "horizon_full"]
    assert ledger.events_since(0)[-1]["data"] == {"service": "A", "last_day": "2026-11-23"}


def test_unique_constraint_makes_duplicates_impossible(ledger):
    ledger.issue_ticket(A, [MON], at("2026-11-23 08:00"))
    with pytest.raises(sqlite3.IntegrityError):
        ledger._db.execute("INSERT INTO tickets (office_id, service, service_day, number, issued_at) "
                           "VALUES ('serang-kota', 'A', '2026-11-23', 1, 0)")


def test_quota_lowered_but_never_below_issued(ledger):
    for _ in range(2):
        ledger.issue_ticket(B, [MON], at("2026-11-23 08:00"))
    with pytest.raises(QuotaError, match="2 tickets are already issued; set 2 or more"):
        ledger.set_quota(B, MON, 1, at("2026-11-23 09:00"))
    assert ledger.quota(B, MON) == 150  # unchanged
    ledger.set_quota(B, MON, 2, at("2026-11-23 09:00"))
    assert ledger.issue_ticket(B, [MON], at("2026-11-23 09:01")) is None


def test_quota_rejects_negative_and_non_integers(ledger):
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(QuotaError):
            ledger.set_quota(B, MON, bad, at("2026-11-23 09:00"))


def test_quota_can_be_raised_for_a_future_day(ledger):
    ledger.set_quota(A, MON, 3, at("2026-11-20 09:00"))
    numbers = [ledger.issue_ticket(A, [MON], at("2026-11-23 08:00")).number for _ in range(3)]
    assert numbers == [1, 2, 3]


def test_void_keeps_the_number_and_cannot_repeat(ledger):
    ledger.issue_ticket(A, [MON], at("2026-11-23 08:00"))
    assert ledger.void("A", MON, 1, at("2026-11-23 08:10"), "double").status == "issued"
    assert ledger.find("A", MON, 1).status == "void"
    with pytest.raises(LedgerError, match="already void"):
        ledger.void("A", MON, 1, at("2026-11-23 08:11"))
    assert ledger.issue_ticket(A, [MON], at("2026-11-23 08:12")).number == 2


def test_find_unknown_ticket(ledger):
    with pytest.raises(TicketNotFound, match="A-007 for 2026-11-23"):
        ledger.find("A", MON, 7)


def test_print_status_transitions(ledger):
    ticket = ledger.issue_ticket(B, [MON], at("2026-11-23 08:00"))
    assert [t.id for t in ledger.unconfirmed()] == [ticket.id]
    ledger.mark_print_failed(ticket.id, "paper out", at("2026-11-23 08:00"))
    ledger.mark_printed(ticket.id, reprint=True)
    found = ledger.find("B", MON, 1)
    assert (found.status, found.print_attempts, ledger.unconfirmed()) == ("reprinted", 2, [])


def test_state_written_only_on_change(ledger):
    assert ledger.set_state("printer", "ok", at("2026-11-23 08:00")) is True
    assert ledger.set_state("printer", "ok", at("2026-11-23 08:01")) is False
    assert ledger.set_state("printer", "paper_out", at("2026-11-23 08:02")) is True
    assert ledger.state() == {"printer": "paper_out"}


def test_high_water_is_latest_ticket_or_event(ledger):
    assert ledger.high_water() is None
    ledger.issue_ticket(B, [MON], at("2026-11-23 08:00"))
    ledger.record_event(UnknownEvent("x", {}), at("2026-11-23 09:30"))
    assert ledger.high_water() == at("2026-11-23 09:30")


def test_readonly_reader_sees_commits_and_cannot_write(ledger):
    reader = Ledger(ledger.path, "serang-kota", JAKARTA, readonly=True)
    ledger.issue_ticket(B, [MON], at("2026-11-23 08:00"))
    assert reader.taken("B", MON) == 1
    with pytest.raises(sqlite3.OperationalError):
        reader.record_event(UnknownEvent("x", {}), at("2026-11-23 08:00"))
    reader.close()


def test_events_pruned_after_retention(ledger):
    ledger.record_event(UnknownEvent("old", {}), at("2026-01-01 08:00"))
    ledger.record_event(UnknownEvent("new", {}), at("2026-11-01 08:00"))
    assert ledger.prune_events(at("2026-11-23 08:00")) == 1
    assert [e["kind"] for e in ledger.events_since(0)] == ["new"]


def test_high_water_includes_the_kiosks_recorded_state(ledger):
    ledger.issue_ticket(B, [MON], at("2026-11-23 08:00"))
    ledger.set_state("clock", {"day": "2026-11-24"}, at("2026-11-24 00:00"))
    assert ledger.high_water() == at("2026-11-24 00:00")


def test_schema_2_ledger_keeps_its_requests_and_takes_clock_confirmations(ledger):
    ticket = ledger.issue_ticket(B, [MON], at("2026-11-23 08:00"))
    ledger.request_reprint("B", MON, 1, at("2026-11-23 08:01"))
    ledger.close()
    old = sqlite3.connect(ledger.path)  # as schema 2 made it: requests.kind without clock_confirm
    old.executescript("""
        DROP TABLE requests;
        CREATE TABLE requests (id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('reprint', 'test_print')),
            ticket_id INTEGER REFERENCES tickets (id), requested_at INTEGER NOT NULL, UNIQUE (kind, ticket_id));
        INSERT INTO requests (kind, ticket_id, requested_at) VALUES ('reprint', 1, 0);
        PRAGMA user_version = 2;""")
    old.close()
    migrated = Ledger(ledger.path, "serang-kota", JAKARTA)
    assert migrated.reprint_pending(ticket.id)
    request = migrated.add_request("clock_confirm", at("2026-11-23 08:02"))
    assert migrated.requests("clock_confirm") == [request]
    assert migrated._db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert migrated._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    migrated.close()


def test_newer_schema_refused(tmp_path):
    path = tmp_path / "l.sqlite3"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(LedgerError, match="schema 99"):
        Ledger(str(path), "o", JAKARTA)


# ---------------------------------------------------------------- property-based

WEEKDAY_SETS = st.sets(st.integers(0, 6), min_size=1).map(frozenset)
START = dt.datetime(2026, 11, 23, 7, 0, tzinfo=JAKARTA)


@st.composite
def scenarios(draw):
    calendar = Calendar(
        open_weekdays=draw(WEEKDAY_SETS),
        holidays=frozenset(START.date() + dt.timedelta(days=d) for d in draw(st.sets(st.integers(0, 20)))),
        extra_open_days=frozenset(),
        opens_at=dt.time(8), last_ticket_at=dt.time(14), closes_at=dt.time(15),
        booking_horizon_days=draw(st.integers(1, 4)))
    services = [Service("A", "a", draw(st.integers(0, 4)), None, None, ()),
                Service("B", "b", draw(st.integers(0, 4)), None, None, ())]
    steps = draw(st.lists(st.tuples(st.sampled_from("AB"), st.integers(0, 600),
                                     st.one_of(st.none(), st.integers(0, 5))), max_size=40))
    return calendar, services, steps


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_property_quota_numbering_and_earliest_day(scenario):
    calendar, services, steps = scenario
    by_code = {s.code: s for s in services}
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"{tmp}/l.sqlite3", "o", JAKARTA)
        now = START
        for code, minutes, new_quota in steps:
            now += dt.timedelta(minutes=minutes)
            days = servicedays.booking_days(calendar, now)
            if new_quota is not None and days:
                _try_set_quota(ledger, by_code[code], days[-1], new_quota, now)
            expected = next((d for d in days if ledger.taken(code, d) < ledger.quota(by_code[code], d)), None)
            ticket = ledger.issue_ticket(by_code[code], days, now)
            assert (ticket.service_day if ticket else None) == expected
            if ticket:
                assert servicedays.is_service_day(calendar, ticket.service_day)
                assert ticket.service_day >= now.date()
        _check_invariants(ledger, by_code)
        ledger.close()


def _try_set_quota(ledger, service, day, quota, now):
    taken = ledger.taken(service.code, day)
    if quota < taken:
        with pytest.raises(QuotaError):
            ledger.set_quota(service, day, quota, now)
    else:
        ledger.set_quota(service, day, quota, now)


def _check_invariants(ledger, by_code):
    rows = ledger._db.execute("SELECT service, service_day, GROUP_CONCAT(number) FROM tickets "
                              "GROUP BY service, service_day").fetchall()
    for code, day, numbers in rows:
        numbers = sorted(int(n) for n in numbers.split(","))
        assert numbers == list(range(1, len(numbers) + 1))
        assert len(numbers) <= ledger.quota(by_code[code], dt.date.fromisoformat(day))


def test_a_state_and_its_event_commit_together_and_a_void_ticket_is_not_owed(ledger):
    assert ledger.set_state("printer", "paper_out", at("2026-11-23 08:00"), PrinterState(PrinterStatus.PAPER_OUT))
    assert not ledger.set_state("printer", "paper_out", at("2026-11-23 08:01"), PrinterState(PrinterStatus.PAPER_OUT))
    assert [e["kind"] for e in ledger.events_since(0)] == ["printer_state"]
    ticket = ledger.issue_ticket(B, [MON], at("2026-11-23 08:02"))
    ledger.request_reprint("B", MON, 1, at("2026-11-23 08:03"))
    ledger.void("B", MON, 1, at("2026-11-23 08:04"))
    assert ledger.owed_prints(MON) == [] and not ledger.reprint_pending(ticket.id)


def test_request_ids_are_never_reused(ledger):
    """A reply names its request by id; once the table emptied, every request used to be number 1."""
    first = ledger.add_request("test_print", at("2026-11-23 08:00"))
    ledger.request_done(RequestDone(first, RequestKind.TEST_PRINT, ok=True), at("2026-11-23 08:00"))
    second = ledger.add_request("test_print", at("2026-11-23 08:01"))
    assert second > first
    assert ledger.request_result(first)["request_id"] == first


def test_a_ledger_that_reused_request_ids_continues_past_every_id_a_reply_named(ledger):
    for minute in range(3):  # as the old table did: each done request freed its id again
        request = ledger.add_request("test_print", at(f"2026-11-23 08:0{minute}"))
        ledger.request_done(RequestDone(request, RequestKind.TEST_PRINT, ok=True), at(f"2026-11-23 08:0{minute}"))
    ledger._db.execute("UPDATE events SET data = json_set(data, '$.request_id', 7) WHERE kind = 'request_done' "
                       "AND id = (SELECT MAX(id) FROM events WHERE kind = 'request_done')")
    waiting = ledger.add_request("clock_confirm", at("2026-11-23 08:05"))
    ledger.close()
    old = sqlite3.connect(ledger.path)
    old.executescript(f"""
        DROP TABLE requests;
        CREATE TABLE requests (id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('reprint', 'test_print', 'clock_confirm')),
            ticket_id INTEGER REFERENCES tickets (id), requested_at INTEGER NOT NULL, UNIQUE (kind, ticket_id));
        INSERT INTO requests (id, kind, requested_at) VALUES ({waiting}, 'clock_confirm', 0);""")
    old.close()
    migrated = Ledger(ledger.path, "serang-kota", JAKARTA)
    assert migrated.requests("clock_confirm") == [waiting]  # a waiting request keeps its id
    assert migrated.add_request("test_print", at("2026-11-23 08:06")) == 8
    assert migrated._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    migrated.close()
