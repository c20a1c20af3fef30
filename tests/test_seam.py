"""kiosk.seam: typed events that keep the ledger's JSON byte for byte, state enums that are the SQL's
strings, a reader that reads and a requests client that makes the only writes readers make."""

import datetime as dt
import json
import re
import subprocess
import sys

import pytest
from support import at

from edge_agent.kiosk_events import relay_kind
from kiosk import seam
from kiosk.ledger import SCHEMA, Ledger
from kiosk.seam import (
    PAYLOADS,
    BurstAlarm,
    ButtonsState,
    ClockOutcome,
    ClockSuspect,
    ClockVerdict,
    EventKind,
    KioskEvent,
    LedgerError,
    PrinterState,
    PrinterStatus,
    RequestKind,
    TicketStatus,
    UnknownEvent,
    open_reader,
    open_requests,
    parse_payload,
)

MON = dt.date(2026, 11, 23)
# Each kind's JSON as the kiosk wrote it before the seam was typed: the shapes must not change.
WRITTEN_BY_THE_KIOSK = {
    "burst_alarm": {"service": "A", "tickets": 12, "window_s": 60},
    "printer_state": {"status": "paper_out"},
    "clock_suspect": {"day": "2026-11-23", "reason": "system clock 2026-11-20 06:00 is behind", "suspect": True,
                      "verdict": "behind"},
    "clock_confirmed": {"now": "2026-11-23T08:00:00+07:00", "was": "system clock is 30 days ahead"},
    "buttons_state": {"connected": False, "error": "no USB panel at /dev/ttyACM0"},
    "request_done": {"kind": "clock_confirm", "message": "nothing to confirm", "now": "2026-11-23T08:00:00+07:00",
                     "ok": False, "outcome": "nothing_to_confirm", "request_id": 4},
}


@pytest.fixture
def config(make_config):
    return make_config()


@pytest.fixture
def ledger(config):
    led = Ledger(config.ledger_path, config.office_id, config.tz)
    yield led
    led.close()


def rows(ledger) -> list[tuple[str, str]]:
    return ledger._db.execute("SELECT kind, data FROM events ORDER BY id").fetchall()


def test_every_kind_has_one_payload_class():
    assert set(PAYLOADS) == set(EventKind)
    assert all(cls.KIND is kind for kind, cls in PAYLOADS.items())


def test_the_ledgers_own_events_are_written_as_before(config, ledger):
    a, b = config.service("A"), config.service("B")
    ledger.issue_ticket(a, [], at("2026-11-23 08:00"))
    ticket = ledger.issue_ticket(a, [MON], at("2026-11-23 08:01"))
    ledger.mark_print_failed(ticket.id, "paper out", at("2026-11-23 08:02"))
    ledger.request_reprint("A", MON, 1, at("2026-11-23 08:03"))
    ledger.void("A", MON, 1, at("2026-11-23 08:04"))
    ledger.set_quota(b, MON, 20, at("2026-11-23 08:05"))
    request = ledger.add_request(RequestKind.TEST_PRINT, at("2026-11-23 08:06"))
    ledger.expire_request(request, at("2026-11-23 08:07"))
    expected = [
        ("horizon_full", {"service": "A", "last_day": None}),
        ("ticket_issued", {"service": "A", "service_day": "2026-11-23", "number": 1, "quota": 3}),
        ("print_failed", {"ticket_id": ticket.id, "error": "paper out"}),
        ("reprint_requested", {"ticket_id": ticket.id, "service": "A", "service_day": "2026-11-23", "number": 1}),
        ("ticket_void", {"ticket_id": ticket.id, "service": "A", "service_day": "2026-11-23", "number": 1,
                         "reason": ""}),
        ("quota_set", {"service": "B", "service_day": "2026-11-23", "quota": 20, "taken": 0}),
        ("request_expired", {"request_id": request, "kind": "test_print", "ok": False, "outcome": "expired"}),
    ]
    assert rows(ledger) == [(kind, json.dumps(data, sort_keys=True)) for kind, data in expected]


@pytest.mark.parametrize("kind", sorted(WRITTEN_BY_THE_KIOSK))
def test_a_payload_reads_and_writes_the_json_it_was_written_as(kind):
    data = WRITTEN_BY_THE_KIOSK[kind]
    payload = parse_payload(kind, data)
    assert not isinstance(payload, UnknownEvent), payload
    assert payload.event_kind == kind and list(payload.to_json().items()) == sorted(data.items())


def test_the_kiosks_typed_states_are_what_it_wrote():
    assert PrinterState(PrinterStatus.PAPER_OUT).to_json() == WRITTEN_BY_THE_KIOSK["printer_state"]
    assert ButtonsState(False, "no USB panel at /dev/ttyACM0").to_json() == WRITTEN_BY_THE_KIOSK["buttons_state"]
    assert BurstAlarm("A", 12, 60).to_json() == WRITTEN_BY_THE_KIOSK["burst_alarm"]
    record = {**WRITTEN_BY_THE_KIOSK["clock_suspect"], "boot_id": "b", "kept_at": "x", "monotonic": 1.0}
    assert ClockSuspect.from_json(record).to_json() == WRITTEN_BY_THE_KIOSK["clock_suspect"]  # not the kept time


@pytest.mark.parametrize("kind, data", [("a_later_kind", {"x": 1}), ("printer_state", {}),
                                        ("printer_state", {"status": "on_fire"}), ("ticket_issued", [1, 2])])
def test_what_a_reader_cannot_read_comes_as_it_was(kind, data):
    payload = parse_payload(kind, data)
    assert isinstance(payload, UnknownEvent) and payload.event_kind == kind


def test_a_reader_gets_typed_events_and_survives_a_later_kiosks_kinds(config, ledger):
    ledger.issue_ticket(config.service("A"), [MON], at("2026-11-23 08:00"))
    ledger.record_event(UnknownEvent("a_later_kind", {"x": 1}), at("2026-11-23 08:01"))
    with open_reader(config) as reader:
        events = reader.events_since(0)
        assert [e.kind for e in events] == ["ticket_issued", "a_later_kind"]
        assert events[0].kind is EventKind.TICKET_ISSUED and events[0].payload.service_day == MON
        assert events[0].at == at("2026-11-23 08:00") and events[-1].data() == {"x": 1}
        assert reader.last_event_id() == events[-1].id and reader.events_since(events[-1].id) == []
        assert reader.find("A", MON, 1).status is TicketStatus.ISSUED


def test_a_reader_cannot_write_and_needs_a_ledger(config, ledger, make_config, tmp_path):
    with open_reader(config) as reader, pytest.raises(Exception, match="readonly"):
        reader._ledger.record_event(UnknownEvent("x", {}), at("2026-11-23 08:00"))
    assert not hasattr(reader, "set_quota")
    with pytest.raises(LedgerError, match="no ledger"):
        open_reader(make_config(replace={f'data_dir = "{tmp_path}"': f'data_dir = "{tmp_path / "none"}"'}))


def test_requests_without_a_running_kiosk_stay_queued_or_are_withdrawn(config, ledger):
    ledger.issue_ticket(config.service("A"), [MON], at("2026-11-23 08:00"))
    with open_requests(config, system=lambda: at("2026-11-23 09:00").timestamp()) as kiosk:
        assert kiosk.test_print(0.2) is None
        ticket, printed = kiosk.reprint("A", MON, 1, 0.2)
        assert (ticket.number, printed) == (1, False)
        answer = kiosk.confirm_clock(0.2)
        assert (answer["ok"], answer["outcome"]) == (False, "expired")
        assert kiosk.set_quota(config.service("A"), MON, 5) == 1
    assert ledger.requests(RequestKind.TEST_PRINT) and ledger.reprint_pending(ticket.id)
    assert ledger.requests(RequestKind.CLOCK_CONFIRM) == []  # never left for a kiosk to apply later
    assert ledger.quota(config.service("A"), MON) == 5


def test_a_state_in_a_message_or_log_line_reads_as_the_string_it_was():
    assert [f"{s}" for s in (TicketStatus.VOID, ClockOutcome.CONFIRMED, ClockVerdict.LEAP, RequestKind.REPRINT)] \
        == ["void", "confirmed", "leap", "reprint"]


def test_the_enums_are_the_strings_the_ledgers_sql_allows():
    checks = dict(re.findall(r"CHECK \((\w+) IN \(([^)]*)\)\)", SCHEMA))
    assert {v.strip(" '") for v in checks["status"].split(",")} == set(TicketStatus)
    assert {v.strip(" '") for v in checks["kind"].split(",")} == set(RequestKind)


def test_relayed_bodies_are_the_ledgers_json_with_the_kiosks_id_and_time():
    moment = at("2026-11-23 08:00")
    event = KioskEvent(7, moment, parse_payload("printer_state", {"status": "paper_out"}))
    kind, body = relay_kind(event)
    assert kind == "printer_fault" and list(body.items()) == [
        ("status", "paper_out"), ("kiosk_event_id", 7), ("kiosk_at", moment.isoformat()), ("fault", True)]
    event = KioskEvent(8, moment, parse_payload("buttons_state", WRITTEN_BY_THE_KIOSK["buttons_state"]))
    assert relay_kind(event) == ("button_panel", {**WRITTEN_BY_THE_KIOSK["buttons_state"], "kiosk_event_id": 8,
                                                  "kiosk_at": moment.isoformat(), "fault": True})
    event = KioskEvent(9, moment, parse_payload("burst_alarm", WRITTEN_BY_THE_KIOSK["burst_alarm"]))
    assert relay_kind(event) == ("burst_alarm", {**WRITTEN_BY_THE_KIOSK["burst_alarm"], "kiosk_event_id": 9,
                                                 "kiosk_at": moment.isoformat()})
    assert relay_kind(KioskEvent(10, moment, UnknownEvent("a_later_kind", {}))) is None
    assert relay_kind(KioskEvent(11, moment, parse_payload("burst_alarm", ["damaged"]))) is None


def test_every_name_the_seam_exports_resolves():
    assert all(getattr(seam, name) is not None for name in seam.__all__)
    assert seam.load_config.__module__ == "kiosk.config"


def test_parsing_events_needs_no_ledger():
    """A receiver (headquarters, a technician's script) reads events without loading the kiosk."""
    code = ("import sys; from kiosk.seam import EventKind, parse_payload; "
            "parse_payload('day_full', {'service': 'A', 'service_day': '2026-11-23', 'quota': 3}); "
            "print(sorted(m for m in sys.modules if m.startswith('kiosk')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == str(["kiosk", "kiosk.seam", "kiosk.seam.events", "kiosk.seam.states"])


def test_a_printer_state_this_agent_cannot_read_is_relayed_as_a_fault():
    """A printer status a newer kiosk writes (or a damaged row) is still news: the printer may not print,
    so it goes out as a printer fault with the ledger's JSON as written, as it did before the types."""
    moment = at("2026-11-23 08:00")
    event = KioskEvent(12, moment, parse_payload("printer_state", {"status": "jammed"}))
    assert isinstance(event.payload, UnknownEvent)
    assert relay_kind(event) == ("printer_fault", {"status": "jammed", "kiosk_event_id": 12,
                                                   "kiosk_at": moment.isoformat(), "fault": True})
