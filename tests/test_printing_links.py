"""The kiosk printing through real links to the printer emulator: a pty at 19,200 baud and TCP.

Every check is made twice over: against the ledger and against what the
emulator decoded from the bytes it received.
"""

import time

import pytest
from escpos_emulator import Emulator, PtyLink, TcpLink
from support import FakeSystemClock, at

from kiosk.seam import PrinterStatus
from kiosk.signing import verify_payload

TIMEOUT = 10.0
MON = at("2026-11-23 09:00").date()


@pytest.fixture
def emulator(tmp_path):
    em = Emulator(out_dir=str(tmp_path / "paper"))
    yield em
    em.close()


@pytest.fixture(params=["pty", "tcp"])
def link(request, emulator, tmp_path):
    if request.param == "pty":
        made = PtyLink(emulator, str(tmp_path / "ttyPRINTER"), baud=19200)
        printer = f'backend = "serial"\nserial_port = "{made.link_path}"\nbaud_rate = 19200'
    else:
        made = TcpLink(emulator, "127.0.0.1", 0)
        printer = f'backend = "tcp"\nhost = "127.0.0.1"\ntcp_port = {made.port}'
    made.kiosk_printer = printer + "\nstatus_timeout_ms = 300\nwrite_timeout_ms = 2000"
    yield made
    made.close()


@pytest.fixture
def kiosk(make_config, link, kiosks):
    return kiosks(make_config(replace={'backend = "dummy"': link.kiosk_printer}),
                  system_clock=FakeSystemClock(at("2026-11-23 09:00")))


def ledger_view(kiosk, document) -> tuple:
    fields = verify_payload(kiosk._key, document.qr_payloads[0])
    ticket = kiosk.ledger.find(fields["service"], fields["service_day"], fields["number"])
    return ticket.service, ticket.service_day, ticket.number, ticket.status


def test_tickets_on_paper_equal_the_ledger(kiosk, emulator):
    outcomes = [kiosk.handle_press(code) for code in "ABA"]
    assert all(o.printed for o in outcomes)
    documents = emulator.wait_for_documents(3, TIMEOUT)
    assert [d.complete for d in documents] == [True] * 3
    assert [ledger_view(kiosk, d) for d in documents] == [
        ("A", MON, 1, "printed"), ("B", MON, 1, "printed"), ("A", MON, 2, "printed")]
    assert "A-002" in documents[2].text(32).replace(" ", "")
    assert "Senin, 23 November 2026" in documents[0].text(32)


@pytest.mark.parametrize("fault, clear, status", [
    (lambda em: em.set_paper("out"), lambda em: em.set_paper("ok"), PrinterStatus.PAPER_OUT),
    (lambda em: em.open_cover(), lambda em: em.close_cover(), PrinterStatus.COVER_OPEN),
    (lambda em: em.set_offline(True), lambda em: em.set_offline(False), PrinterStatus.OFFLINE),
    (lambda em: em.set_error(True), lambda em: em.set_error(False), PrinterStatus.ERROR),
])
def test_fault_before_press_takes_no_number(kiosk, emulator, fault, clear, status):
    fault(emulator)
    kiosk.tick()
    assert kiosk.printer_status is status and kiosk.ledger.state()["printer"] == status.value
    assert kiosk.handle_press("A").kind == "refused"
    assert kiosk.ledger.taken("A", MON) == 0
    clear(emulator)
    kiosk.tick()
    assert kiosk.handle_press("A").printed
    [document] = emulator.wait_for_documents(1, TIMEOUT)
    assert ledger_view(kiosk, document) == ("A", MON, 1, "printed")


def test_paper_near_end_is_a_warning_not_a_stop(kiosk, emulator):
    emulator.set_paper("near_end")
    assert kiosk.handle_press("B").printed
    assert kiosk.ledger.state()["printer"] == "paper_near_end"
    assert emulator.wait_for_documents(1, TIMEOUT)[0].complete


def test_paper_out_mid_ticket_is_reprinted_first_when_reloaded(kiosk, emulator):
    kiosk.handle_press("A")
    emulator.paper_out_after(120)
    outcome = kiosk.handle_press("A")
    assert (outcome.ticket.number, outcome.printed) == (2, False)
    assert kiosk.ledger.find("A", MON, 2).status == "print_failed"
    first, cut_short = emulator.wait_for_documents(2, TIMEOUT)
    assert cut_short.interrupted and not cut_short.qr_payloads
    emulator.set_paper("ok")  # the operator reloads
    kiosk.tick()
    reprint = emulator.wait_for_documents(3, TIMEOUT)[2]
    assert reprint.complete and "CETAK ULANG" in reprint.text(32)
    assert ledger_view(kiosk, reprint) == ("A", MON, 2, "reprinted")
    kiosk.tick()
    assert len(emulator.documents) == 3  # the ticket that printed fully was not printed again


def test_disconnect_mid_ticket_then_replug_recovers_without_restart(kiosk, emulator, link):
    link.disconnect_after(150)
    outcome = kiosk.handle_press("B")
    assert not outcome.printed and kiosk.ledger.find("B", MON, 1).status == "print_failed"
    assert kiosk.printer_status is PrinterStatus.OFFLINE
    assert kiosk.handle_press("B").kind == "refused"
    link.replug()
    kiosk.tick()
    assert kiosk.printer_status is PrinterStatus.OK
    assert kiosk.handle_press("B").printed
    documents = [d for d in emulator.wait_for_documents(3, TIMEOUT) if d.complete]
    assert [ledger_view(kiosk, d) for d in documents] == [("B", MON, 1, "reprinted"), ("B", MON, 2, "printed")]


def test_unplug_between_tickets_and_replug(kiosk, emulator, link):
    assert kiosk.handle_press("A").printed
    link.unplug()
    kiosk.tick()
    assert kiosk.printer_status is PrinterStatus.OFFLINE
    link.replug()
    kiosk.tick()
    assert kiosk.handle_press("A").printed
    assert [ledger_view(kiosk, d)[2] for d in emulator.wait_for_documents(2, TIMEOUT)] == [1, 2]


@pytest.mark.parametrize("mode", ["silent", "garbage"])
def test_printer_without_sane_status_keeps_the_kiosk_responsive(kiosk, emulator, mode):
    emulator.status_mode(mode)
    started = time.monotonic()
    outcome = kiosk.handle_press("A")
    elapsed = time.monotonic() - started
    assert outcome.printed and kiosk.printer_status is PrinterStatus.UNKNOWN
    # Not a speed test (benchmarks/printing.py is): a printer that never answers must cost at most
    # the two status timeouts (before and after) and the wire time, never a hang. Generous for CI load.
    assert elapsed < 2 * 0.3 + 2.5
    assert ledger_view(kiosk, emulator.wait_for_documents(1, TIMEOUT)[0]) == ("A", MON, 1, "printed")


def test_quota_full_slip_cut_short_is_not_reported_printed(make_config, link, emulator, kiosks):
    # Service A has no room on any day: every press prints the "see staff" slip.
    config = make_config(replace={'backend = "dummy"': link.kiosk_printer, "daily_quota = 3": "daily_quota = 0"})
    kiosk = kiosks(config, system_clock=FakeSystemClock(at("2026-11-23 09:00")))
    emulator.paper_out_after(60)
    outcome = kiosk.handle_press("A")
    assert (outcome.kind, outcome.printed) == ("full", False), outcome
    assert "paper_out" in outcome.reason
    assert kiosk.printer_status is PrinterStatus.PAPER_OUT and kiosk.ledger.state()["printer"] == "paper_out"
    assert emulator.wait_for_documents(1, TIMEOUT)[0].interrupted
    emulator.set_paper("ok")
    kiosk.tick()
    outcome = kiosk.handle_press("A")
    assert (outcome.kind, outcome.printed) == ("full", True), outcome
    assert "KUOTA PENUH" in emulator.wait_for_documents(2, TIMEOUT)[1].text(32)


def test_a_ticket_with_characters_beyond_latin1_is_saved_and_the_next_one_too(make_config, link, emulator, kiosks):
    # CP437 has the Greek alpha (0xE0): it reaches the emulator, whose PNG font is Latin-1 only.
    config = make_config(replace={'backend = "dummy"': link.kiosk_printer,
                                  'name = "Kartu Keluarga"': 'name = "Loket \u03b1 Kartu Keluarga"'})
    kiosk = kiosks(config, system_clock=FakeSystemClock(at("2026-11-23 09:00")))
    assert kiosk.handle_press("B").printed and kiosk.handle_press("A").printed
    first, second = emulator.wait_for_documents(2, TIMEOUT)
    assert "Loket \u03b1 Kartu Keluarga" in first.text(32)
    assert all(path.endswith((".txt", ".png")) for path in first.files + second.files)
    assert len(first.files + second.files) == 4 and emulator.save_error is None
    kiosk.tick()
    assert kiosk.printer_status is PrinterStatus.OK


def test_quota_full_slip_is_not_sent_to_a_roll_an_owed_reprint_emptied(make_config, link, emulator, kiosks):
    config = make_config(replace={'backend = "dummy"': link.kiosk_printer, "daily_quota = 3": "daily_quota = 0"})
    kiosk = kiosks(config, system_clock=FakeSystemClock(at("2026-11-23 09:00")))
    emulator.paper_out_after(60)
    assert not kiosk.handle_press("B").printed  # B-001 is owed
    emulator.wait_for_documents(1, TIMEOUT)
    emulator.set_paper("ok")
    emulator.paper_out_after(60)  # the reprint of B-001 empties the roll again
    received = emulator.received_bytes
    outcome = kiosk.handle_press("A")
    assert (outcome.kind, outcome.printed) == ("full", False) and "before the slip" in outcome.reason
    assert kiosk.ledger.find("B", MON, 1).status == "print_failed"
    reprint = emulator.wait_for_documents(2, TIMEOUT)[1]
    assert reprint.interrupted
    kiosk.tick()  # a status query after the press: everything the kiosk sent is in
    reprinted = len(kiosk.render(kiosk.ledger.find("B", MON, 1), reprint=True))
    assert emulator.received_bytes - received - reprinted < 60  # and a few status queries: no slip
    assert not any("KUOTA PENUH" in d.text(32) for d in emulator.documents)
