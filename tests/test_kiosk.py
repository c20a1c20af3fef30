"""The kiosk end to end in-process: press, ledger, ESC/POS bytes, LEDs, faults and the clock."""

import datetime as dt
import threading

import pytest
from gpiozero.pins.mock import MockFactory
from support import JAKARTA, FakeSystemClock, at

from kiosk.buttons import ButtonSpec, LedMode
from kiosk.buttons.gpio import GpioButtons
from kiosk.ledger import Ledger
from kiosk.printer import Printer, PrinterStatus
from kiosk.printer.decode import decode
from kiosk.printer.dummy import DummyPrinter
from kiosk.signing import verify_payload

MON = dt.date(2026, 11, 23)


@pytest.fixture
def system():
    return FakeSystemClock(at("2026-11-23 09:00"))


@pytest.fixture
def make_kiosk(make_config, system, kiosks):
    def make(extra="", printer=None, buttons=None, replace=None):
        return kiosks(make_config(extra, replace), printer=printer or DummyPrinter(), buttons=buttons,
                      system_clock=system, monotonic=system.monotonic, ntp_state=system.ntp_state)
    return make


def receipts(kiosk):
    return decode(kiosk.printer.output)


def test_press_issues_durable_ticket_then_prints_it(make_kiosk):
    kiosk = make_kiosk()
    outcome = kiosk.handle_press("A")
    assert (outcome.kind, outcome.ticket.label, outcome.ticket.service_day, outcome.printed) == \
        ("ticket", "A-001", MON, True)
    [receipt] = receipts(kiosk)
    text = receipt.text()
    assert "Senin, 23 November 2026" in text and "Perekaman e-KTP" in text
    fields = verify_payload(kiosk._key, receipt.qr_payloads[0])
    assert (fields["service"], fields["service_day"], fields["number"]) == ("A", MON, 1)
    assert kiosk.ledger.find("A", MON, 1).status == "printed"


class LedgerCheckingPrinter(Printer):
    """A printer link that, at the moment the first byte arrives, looks in the ledger from outside."""

    def __init__(self, path):
        super().__init__()
        self.path, self.seen = path, []

    def _open(self):
        pass

    def _send(self, data):
        reader = Ledger(self.path, "serang-kota", JAKARTA, readonly=True)
        self.seen.append(reader._db.execute("SELECT service, number FROM tickets").fetchall())
        reader.close()


def test_ticket_is_committed_before_the_first_byte(make_kiosk, tmp_path):
    printer = LedgerCheckingPrinter(str(tmp_path / "ledger.sqlite3"))
    kiosk = make_kiosk(printer=printer)
    kiosk.handle_press("B")
    kiosk.handle_press("B")
    assert printer.seen == [[("B", 1)], [("B", 1), ("B", 2)]]


def test_full_today_goes_to_next_service_day_with_date_printed(make_kiosk):
    kiosk = make_kiosk()  # A has quota 3
    labels = [kiosk.handle_press("A").ticket for _ in range(4)]
    assert [(t.number, t.service_day) for t in labels][-1] == (1, dt.date(2026, 11, 24))
    assert "Selasa, 24 November 2026" in receipts(kiosk)[-1].text()
    assert labels[2].people_before == 2


def test_whole_horizon_full_prints_a_slip_and_records_it(make_kiosk):
    kiosk = make_kiosk()
    for _day in range(5):  # horizon is 5 service days, quota 3
        for _ in range(3):
            assert kiosk.handle_press("A").kind == "ticket"
    outcome = kiosk.handle_press("A")
    assert (outcome.kind, outcome.printed) == ("full", True)
    slip = receipts(kiosk)[-1]
    assert slip.qr_payloads == [] and "petugas" in slip.text()
    assert [e["kind"] for e in kiosk.ledger.events_since(0)][-1] == "horizon_full"


def test_printer_down_before_press_takes_no_number(make_kiosk):
    printer = DummyPrinter()
    kiosk = make_kiosk(printer=printer)
    printer.state = PrinterStatus.PAPER_OUT
    outcome = kiosk.handle_press("A")
    assert (outcome.kind, outcome.reason) == ("refused", "paper_out")
    assert kiosk.ledger.taken("A", MON) == 0
    assert kiosk.ledger.state()["printer"] == "paper_out"
    printer.state = PrinterStatus.OK
    assert kiosk.handle_press("A").ticket.number == 1


class BreaksMidTicket(Printer):
    def _open(self):
        pass

    def _send(self, data):
        from kiosk.printer.errors import PrinterError
        raise PrinterError("cable pulled")


def test_print_failure_is_recorded_not_lost(make_kiosk):
    kiosk = make_kiosk(printer=BreaksMidTicket())
    outcome = kiosk.handle_press("A")
    assert (outcome.kind, outcome.printed) == ("ticket", False)
    ticket = kiosk.ledger.find("A", MON, 1)
    assert (ticket.status, ticket.print_attempts) == ("print_failed", 1)
    assert any(e["kind"] == "print_failed" for e in kiosk.ledger.events_since(0))


def test_reprint_is_marked_and_void_cannot_be_reprinted(make_kiosk):
    kiosk = make_kiosk()
    kiosk.handle_press("B")
    kiosk.reprint("B", MON, 1)
    assert "CETAK ULANG" in receipts(kiosk)[-1].text()
    assert kiosk.ledger.find("B", MON, 1).status == "reprinted"
    kiosk.ledger.void("B", MON, 1, at("2026-11-23 09:05"))
    with pytest.raises(Exception, match="void"):
        kiosk.reprint("B", MON, 1)


def test_burst_alarm_recorded_once_and_tickets_still_issued(make_kiosk):
    kiosk = make_kiosk("burst_max_tickets = 3\n")
    outcomes = [kiosk.handle_press("B") for _ in range(6)]
    assert all(o.kind == "ticket" for o in outcomes)
    alarms = [e for e in kiosk.ledger.events_since(0) if e["kind"] == "burst_alarm"]
    assert len(alarms) == 1 and alarms[0]["data"]["service"] == "B"


def test_cooldown_ignores_repeat_press(make_kiosk):
    kiosk = make_kiosk(replace={"cooldown_ms = 0": "cooldown_ms = 2000"})
    assert [kiosk.handle_press("B").kind for _ in range(2)] == ["ticket", "ignored"]
    assert kiosk.handle_press("A").kind == "ticket"  # another button is independent


# ---------------------------------------------------------------- clock

def test_clock_behind_never_issues_into_the_past(make_kiosk, system, make_config):
    kiosk = make_kiosk()
    kiosk.handle_press("B")
    kiosk.stop()
    system.set(at("2026-11-20 06:00"))  # power cut, no network, no RTC: three days behind
    again = make_kiosk()
    ticket = again.handle_press("B").ticket
    assert (ticket.service_day, ticket.number) == (MON, 2)
    assert ticket.issued_at >= at("2026-11-23 09:00")
    assert again.snapshot()["clock"]["suspect"] is True
    assert again.ledger.state()["clock"]["suspect"] is True
    assert any(e["kind"] == "clock_suspect" for e in again.ledger.events_since(0))


def test_clock_jump_forward_rolls_the_day(make_kiosk, system):
    kiosk = make_kiosk()
    assert kiosk.handle_press("B").ticket.service_day == MON
    system.set(at("2026-11-26 08:30"))  # time sync after days with a wrong clock
    system.ntp_synced = True  # a time server stepped it, not a hand: taken (docs/architecture.md)
    ticket = kiosk.handle_press("B").ticket
    assert (ticket.service_day, ticket.number, ticket.people_before) == (dt.date(2026, 11, 26), 1, 0)
    assert kiosk.snapshot()["clock"]["suspect"] is False


def test_clock_a_year_ahead_is_not_taken_until_confirmed(make_kiosk, system):
    kiosk = make_kiosk()
    kiosk.handle_press("B")
    kiosk.stop()
    system.set(at("2027-11-23 09:10"))  # power cut; the clock comes back a year ahead
    again = make_kiosk()
    ticket = again.handle_press("B").ticket
    assert (ticket.service_day, ticket.number) == (MON, 2)
    assert ticket.issued_at < at("2026-11-24 00:00")
    assert again.ledger.high_water() < at("2026-11-24 00:00"), "the leap reached the ledger"
    recorded = again.ledger.state()["clock"]
    assert recorded["suspect"] and "365 days ahead" in recorded["reason"]
    assert any(e["kind"] == "clock_suspect" for e in again.ledger.events_since(0))
    request = again.ledger.add_request("clock_confirm", again.clock.now())
    again.tick()
    assert not again.ledger.request_pending(request)
    assert again.snapshot()["clock"]["suspect"] is False
    assert again.handle_press("B").ticket.service_day == dt.date(2027, 11, 23)
    kinds = [e["kind"] for e in again.ledger.events_since(0)]
    assert "clock_confirmed" in kinds and kinds.count("request_done") == 1


def test_a_quiet_kiosk_records_its_day_so_weeks_later_nothing_is_a_leap(make_kiosk, system, make_config):
    from kiosk.status import read_status

    kiosk = make_kiosk()
    for _ in range(20):  # running through a long closure: no tickets, one tick a day is enough
        system.advance(dt.timedelta(days=1))
        kiosk.tick()
    assert not kiosk.clock.suspect
    assert read_status(kiosk.config, system=system)["clock"]["suspect"] is False
    kiosk.stop()
    assert make_kiosk().snapshot()["clock"]["suspect"] is False


def test_after_last_ticket_time_ticket_is_for_next_day(make_kiosk, system):
    system.set(at("2026-11-27 14:30"))  # Friday afternoon
    kiosk = make_kiosk()
    assert kiosk.handle_press("B").ticket.service_day == dt.date(2026, 11, 30)


# ---------------------------------------------------------------- buttons and LEDs (MockFactory)

@pytest.fixture
def gpio():
    factory = MockFactory()
    yield factory
    factory.close()


def gpio_buttons(factory):
    specs = [ButtonSpec("A", "GPIO17", "GPIO27"), ButtonSpec("B", "GPIO22", "GPIO23")]
    return GpioButtons(specs, pin_factory=factory)


def test_button_press_becomes_a_printed_ticket(gpio, make_kiosk):
    kiosk = make_kiosk(buttons=gpio_buttons(gpio))
    kiosk.start()
    gpio.pin("GPIO22").drive_low()
    gpio.pin("GPIO22").drive_high()
    kiosk.drain()
    assert [r.qr_payloads[0].split(":")[3:5] for r in receipts(kiosk)] == [["B", "20261123"]]
    assert gpio.pin("GPIO23").state  # B's LED on: today has room


def test_leds_follow_quota_and_printer(gpio, make_kiosk):
    printer = DummyPrinter()
    kiosk = make_kiosk(printer=printer, buttons=gpio_buttons(gpio))
    kiosk.start()
    for _ in range(3):
        kiosk.handle_press("A")
    assert kiosk._leds == {"A": LedMode.SLOW, "B": LedMode.ON}
    printer.state = PrinterStatus.COVER_OPEN
    kiosk.tick()
    assert kiosk._leds == {"A": LedMode.OFF, "B": LedMode.OFF}
    assert not gpio.pin("GPIO23").state


def test_two_buttons_at_once_give_two_tickets(gpio, make_kiosk):
    kiosk = make_kiosk(buttons=gpio_buttons(gpio))
    kiosk.start()
    presses = [threading.Thread(target=gpio.pin(p).drive_low) for p in ("GPIO17", "GPIO22")]
    for t in presses:
        t.start()
    for t in presses:
        t.join()
    kiosk.drain()
    assert sorted(r.qr_payloads[0].split(":")[3] for r in receipts(kiosk)) == ["A", "B"]


def test_unplugged_file_printer_refuses_then_recovers_without_restart(make_kiosk, tmp_path):
    from kiosk.printer.file import FilePrinter

    device = tmp_path / "lp0"
    device.write_bytes(b"")
    kiosk = make_kiosk(printer=FilePrinter(str(device)))
    assert kiosk.handle_press("B").printed
    device.unlink()  # cable pulled: the device node disappears
    assert kiosk.handle_press("B").kind == "refused"
    assert kiosk.ledger.state()["printer"] == "offline"
    device.write_bytes(b"")  # plugged back in
    kiosk.tick()
    outcome = kiosk.handle_press("B")
    assert (outcome.kind, outcome.printed, outcome.ticket.number) == ("ticket", True, 2)
    assert decode(device.read_bytes())[0].qr_payloads[0].split(":")[5] == "2"


def test_worker_survives_a_failing_press(make_kiosk, tmp_path):
    kiosk = make_kiosk()
    kiosk.start()
    kiosk.ledger._db.execute("DROP TABLE events")  # the next issue fails inside its transaction
    kiosk.submit("B")
    kiosk.drain()
    assert kiosk.ledger.taken("B", MON) == 0  # rolled back: no ticket without its event
    kiosk.ledger._db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, "
                             "kind TEXT NOT NULL, data TEXT NOT NULL)")
    kiosk.submit("B")
    kiosk.drain()
    assert kiosk.ledger.find("B", MON, 1).status == "printed"


class RunsOutOfPaper(DummyPrinter):
    """The mechanism takes the bytes, then the roll ends before the cut."""

    def __init__(self):
        super().__init__()
        self.runs_out = False

    def _send(self, data):
        super()._send(data)
        if self.runs_out:
            self.state, self.runs_out = PrinterStatus.PAPER_OUT, False


def test_paper_out_mid_ticket_then_reprinted_first_when_back(make_kiosk):
    printer = RunsOutOfPaper()
    kiosk = make_kiosk(printer=printer)
    kiosk.handle_press("B")
    printer.runs_out = True
    outcome = kiosk.handle_press("B")
    assert (outcome.ticket.number, outcome.printed) == (2, False)
    assert kiosk.ledger.find("B", MON, 2).status == "print_failed"
    assert kiosk.handle_press("B").kind == "refused"  # no number while the roll is empty
    printer.state = PrinterStatus.OK  # paper reloaded
    printer.clear()
    kiosk.handle_press("A")
    first, second = receipts(kiosk)
    assert "CETAK ULANG" in first.text() and first.qr_payloads[0].split(":")[3:6:2] == ["B", "2"]
    assert "CETAK ULANG" not in second.text() and second.qr_payloads[0].split(":")[3] == "A"
    assert [kiosk.ledger.find("B", MON, n).status for n in (1, 2)] == ["printed", "reprinted"]
    kiosk.tick()
    assert len(receipts(kiosk)) == 2  # nothing printed twice


def test_idle_tick_reprints_as_soon_as_printer_is_back(make_kiosk):
    printer = RunsOutOfPaper()
    kiosk = make_kiosk(printer=printer)
    printer.runs_out = True
    kiosk.handle_press("B")
    printer.state = PrinterStatus.OK
    kiosk.tick()
    assert "CETAK ULANG" in receipts(kiosk)[-1].text()
    assert kiosk.ledger.find("B", MON, 1).status == "reprinted"


def test_unconfirmed_print_at_restart_is_reported_not_reprinted(make_kiosk, system):
    kiosk = make_kiosk()
    ticket = kiosk.ledger.issue_ticket(kiosk.config.service("B"), [MON], at("2026-11-23 09:00"))
    kiosk.stop()  # as if the power went between the commit and the print
    again = make_kiosk()
    again._report_unconfirmed()
    assert again.ledger.state()["unconfirmed_prints"] == ["B-001 2026-11-23"]
    assert again.ledger.find("B", MON, ticket.number).status == "issued"
    again.tick()
    assert again.printer.output == b""


def test_refused_press_blinks_its_led(gpio, make_kiosk):
    printer = DummyPrinter()
    kiosk = make_kiosk(printer=printer, buttons=gpio_buttons(gpio))
    kiosk.start()
    printer.state = PrinterStatus.PAPER_OUT
    kiosk.tick()
    assert kiosk.handle_press("A").kind == "refused"
    assert kiosk._leds == {"A": LedMode.FAST, "B": LedMode.OFF}
    kiosk._refused_until["A"] = 0  # the blink has run its time
    kiosk.tick()
    assert kiosk._leds["A"] is LedMode.OFF


def test_test_print_request_is_printed_and_answered(make_kiosk):
    kiosk = make_kiosk()
    request = kiosk.ledger.add_request("test_print", at("2026-11-23 09:00"))
    kiosk.tick()
    [slip] = receipts(kiosk)
    assert "TES PRINTER" in slip.text() and "Bukan tiket antrean." in slip.text()
    assert not kiosk.ledger.request_pending(request)
    done = [e for e in kiosk.ledger.events_since(0) if e["kind"] == "request_done"]
    assert done[-1]["data"] == {"request_id": request, "kind": "test_print", "ok": True, "printer": "ok"}
    assert kiosk.ledger.taken("A", MON) == 0  # a test print takes no number


class LinkedButtons:
    """A button source with a link (like the USB panel): the hardware edge, reduced to its state."""

    connected, last_error = True, None

    def start(self, on_press, on_end=None):
        pass

    def set_led(self, service, mode):
        pass

    def close(self):
        pass


def test_lost_button_panel_shows_in_state_and_events(make_kiosk):
    buttons = LinkedButtons()
    kiosk = make_kiosk(buttons=buttons)
    assert kiosk.ledger.state()["buttons"] == {"connected": True, "error": None}
    buttons.connected, buttons.last_error = False, "no heartbeat for 3.0 s"
    kiosk.tick()
    assert kiosk.snapshot()["buttons"] == {"connected": False, "error": "no heartbeat for 3.0 s"}
    assert [e["data"] for e in kiosk.ledger.events_since(0) if e["kind"] == "buttons_state"][-1]["connected"] is False


def test_a_missing_printer_is_said_once_per_cause_not_every_poll(make_kiosk, caplog):
    kiosk = make_kiosk()
    kiosk.printer.state = PrinterStatus.OFFLINE
    kiosk.printer.close()
    with caplog.at_level("ERROR", logger="kiosk"):
        for _ in range(10):  # two and a half seconds of fault polls
            kiosk.tick()
    assert [r.getMessage() for r in caplog.records] == ["printer not available"]
    kiosk.printer.state = PrinterStatus.OK
    kiosk.tick()
    assert kiosk.printer_status is PrinterStatus.OK
