"""The kiosk: a button press becomes a durable ticket, then ESC/POS bytes.

One worker thread serves presses in order, because there is one printer and
one ledger writer. Button sources only enqueue, so a slow printer never
stalls the GPIO callbacks, and nothing here waits on the network.
"""

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time

from common.sdnotify import Notifier
from kiosk import layout, servicedays
from kiosk.buttons import LedMode
from kiosk.buttons.guard import PressGuard
from kiosk.clock import SafeClock, clock_record, expire_confirmations, ledger_clock, ntp_synced, take_confirmations
from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.ledger import Ledger
from kiosk.liveness import Heartbeat
from kiosk.printer import BACKENDS as PRINTERS
from kiosk.printer import Printer, PrinterStatus
from kiosk.printer.errors import PrinterError
from kiosk.printer.serialport import BITS_PER_BYTE
from kiosk.seam.events import BurstAlarm, ButtonsState, ClockSuspect, EventPayload, PrinterState, RequestDone
from kiosk.seam.states import PressKind, RequestKind
from kiosk.signing import load_or_create_key, ticket_payload
from kiosk.state import service_status, snapshot
from kiosk.ticket import Ticket

log = logging.getLogger("kiosk")
IDLE_POLL_S = 1.0  # how often the idle kiosk re-checks printer, clock and LEDs
FAULT_POLL_S = 0.25  # faster while the printer is down, so a reload is noticed at once
_UNSEEN = object()
REFUSED_BLINK_S = 1.5  # how long a refused press blinks its LED
QUEUE_LIMIT = 32  # presses waiting beyond this are someone leaning on every button
STATUS_QUESTIONS = 3  # DLE EOT 1, 2 and 4 after a ticket (kiosk/printer/link.py), each up to status_timeout_ms


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: PressKind
    service: str
    ticket: Ticket | None = None
    printed: bool = False
    reason: str = ""


class Kiosk:
    def __init__(self, config: Config, ledger: Ledger, printer: Printer, clock: SafeClock,
                 key: bytes, guard: PressGuard, buttons=None):
        self.config = config
        self.ledger = ledger
        self.printer = printer
        self.clock = clock
        self.buttons = buttons
        self.guard = guard
        p = config.printer
        self.paper = layout.Paper(p["paper_width_mm"], p["code_page"], p["profile"], p["qr_code"])
        self._key = key
        self._queue: queue.Queue = queue.Queue(QUEUE_LIMIT)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._leds: dict[str, LedMode] = {}
        self._refused_until: dict[str, float] = {}
        self.printer_status = PrinterStatus.UNKNOWN
        self._open_error: str | None = None  # the last reason it could not be opened, said once
        self._verdicts: dict = {}  # what the ledger's kiosk_state last heard, per key
        self._written = False  # tickets committed since the last idle WAL checkpoint
        self.ended = threading.Event()  # set when the button source has no more presses
        self.notifier = Notifier()
        self.heartbeat = Heartbeat(config.data_dir)
        self._beating = False  # only a started kiosk beats: a staff command printing here must not

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Get ready to issue: printer, unfinished prints, LEDs, then the button source."""
        self._beating = True  # owed reprints at start may take long too
        self._warn_if_a_ticket_outlasts_the_limits()
        self._open_printer()
        self._report_unconfirmed()
        self.tick()
        self._worker = threading.Thread(target=self._serve, name="kiosk-worker", daemon=True)
        self._worker.start()
        if self.buttons is not None:
            self.buttons.start(self.submit, self.ended.set)

    def _warn_if_a_ticket_outlasts_the_limits(self) -> None:
        """Beats come between tickets, never inside one: say at start if one ticket on this link may
        take longer than readers wait (it would read as hung) or than systemd's watchdog (it would be
        killed mid-ticket)."""
        if not PRINTERS.load(self.config.printer["backend"]).WRITE_MAY_STALL:
            return  # file, sim and dummy take bytes at once
        step = slowest_ticket_s(self.config, len(self.render(self._sample_ticket(), reprint=True)))
        watchdog = self.notifier.watchdog_s()
        limits = {"heartbeat_stale_s": self.config.heartbeat_stale_s, "watchdog_s": watchdog}
        if step < min(limit for limit in limits.values() if limit):
            return
        p = self.config.printer
        log.log(logging.ERROR if watchdog and step >= watchdog else logging.WARNING,
                "one ticket on this printer link may take longer than the kiosk's liveness limits: it would "
                "read as hung, or systemd's watchdog would restart it mid-ticket; raise printer.baud_rate, "
                "print the QR natively (a profile with GS ( k, qr_code = \"auto\"), lower "
                "printer.write_timeout_ms, or raise heartbeat_stale_s",
                extra={"ticket_s": round(step, 1), "baud_rate": p["baud_rate"] if p["backend"] == "serial" else None,
                       "write_timeout_ms": p["write_timeout_ms"], "qr": "native" if self.paper.native_qr else "image",
                       **limits})

    def _sample_ticket(self) -> Ticket:
        now = self.clock.now()
        return Ticket(0, self.config.office_id, self.config.services[0].code, now.date(), 999, now, 99)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):  # a full queue means the worker is awake anyway
            self._queue.put_nowait(threading.Event())  # wake it now, not after its idle poll
        if self._worker is not None:
            self._worker.join(timeout=10)
        if self.buttons is not None:
            self.buttons.close()
        self.printer.close()

    def submit(self, service: str) -> None:
        """Called from a button source's thread; never blocks it."""
        try:
            self._queue.put_nowait(service)
        except queue.Full:
            log.warning("press dropped, queue full", extra={"service": service})

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every submitted press has been served (demo and tests)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.beat()
            try:
                poll = IDLE_POLL_S if self.printer_status.can_print else FAULT_POLL_S
                item = self._queue.get(timeout=poll)
            except queue.Empty:
                item = None
            try:
                self._serve_one(item)
            except Exception:
                # A full disk or a locked ledger must not end the worker: the next press
                # tries again, and the log says what went wrong with this one.
                log.exception("press or housekeeping failed", extra={"service": item})

    def beat(self) -> None:
        """Tell systemd's watchdog and the readers of the heartbeat (kiosk/liveness.py) the worker lives.

        Only the worker's own work calls this: at each turn of its loop and between the long steps of
        one turn (each reprint of a batch, each test slip, the ticket after them). A reprint takes
        seconds on a slow link, and a batch of them must not read as a hang, nor make systemd kill
        the kiosk mid-batch; a single stuck step still stops the beats."""
        # Called at every press and reprint: the heartbeat's own pace (BEAT_EVERY_S) spares both
        # the file and systemd's socket on that path.
        if self._beating and self.heartbeat.beat():
            self.notifier.alive()

    def _serve_one(self, item) -> None:
        if item is None:
            self.tick()
            self._checkpoint_if_written()
        elif isinstance(item, threading.Event):
            item.set()
        else:
            self._written = True
            self.handle_press(item)

    def _checkpoint_if_written(self) -> None:
        if self._written:
            self._written = False
            self.ledger.checkpoint()

    # ------------------------------------------------------------ a press

    def handle_press(self, code: str) -> Outcome:
        service = self.config.service(code)
        if not self.guard.accept(code):
            return Outcome(PressKind.IGNORED, code, reason="cooldown")
        if not self._check_printer().can_print:
            return self._refuse(code)
        self._print_owed()  # tickets owed from a failed print or a staff request go out first
        self.beat()
        self._set_led(code, LedMode.FAST)
        try:
            return self._issue(service)
        finally:
            self._refresh_leds()

    def _issue(self, service) -> Outcome:
        now = self.clock.now()
        days = servicedays.booking_days(self.config.calendar, now)
        ticket = self.ledger.issue_ticket(service, days, now)
        self.clock.advance(now)
        if ticket is None:
            log.warning("booking horizon full", extra={"service": service.code})
            return self._print_full_slip(service, now, days)
        log.info("ticket issued", extra={"ticket": ticket.label, "service_day": str(ticket.service_day)})
        printed = self._print_ticket(ticket)
        if self.guard.record_ticket(service.code):
            self._burst_alarm(service.code, now)
        return Outcome(PressKind.TICKET, service.code, ticket, printed)

    def _refuse(self, code: str) -> Outcome:
        log.warning("press refused, printer not ready", extra={"service": code, "printer": self.printer_status.value})
        # The LED is off for the fault; a short fast blink says "seen, but cannot print".
        self._refused_until[code] = time.monotonic() + REFUSED_BLINK_S
        self._set_led(code, LedMode.FAST)
        return Outcome(PressKind.REFUSED, code, reason=self.printer_status.value)

    def _send(self, data: bytes) -> str | None:
        """Hand a slip to the printer; the error text if the link failed, else None."""
        try:
            self.printer.send(data)
        except PrinterError as exc:
            self.printer.close()  # a stale link (unplugged cable) is reopened on the next check
            self._check_printer()
            return str(exc)
        return None

    def _print_ticket(self, ticket: Ticket, reprint: bool = False) -> bool:
        """Send the ticket, then ask the printer whether it could print it all."""
        error = self._send(self.render(ticket, reprint))
        if error is not None:
            return self._print_failed(ticket, error)
        after = self._check_printer()
        if not after.can_print:  # paper ran out or the cover opened while it printed
            return self._print_failed(ticket, f"printer {after.value} after the ticket was sent")
        self.ledger.mark_printed(ticket.id, reprint)
        return True

    def _print_failed(self, ticket: Ticket, error: str) -> bool:
        log.error("print failed", extra={"ticket": ticket.label, "error": error})
        self.ledger.mark_print_failed(ticket.id, error, self.clock.now())
        return False

    def _print_owed(self) -> None:
        """Print again, marked CETAK ULANG, failed tickets of today or later and staff requests."""
        for ticket in self.ledger.owed_prints(self.clock.now().date()):
            self.beat()
            log.info("printing again", extra={"ticket": ticket.label, "status": ticket.status})
            if not self._print_ticket(ticket, reprint=True):
                return

    def render(self, ticket: Ticket, reprint: bool = False) -> bytes:
        service = self.config.service(ticket.service)
        payload = ticket_payload(self._key, self.config.office_id, self.config.id,
                                 ticket.service, ticket.service_day, ticket.number)
        return layout.render_ticket(ticket, office_name=self.config.office_name, service_name=service.name,
                                    opens_at=self.config.calendar.opens_at, qr_payload=payload,
                                    paper=self.paper, reprint=reprint)

    def _print_full_slip(self, service, now, days) -> Outcome:
        data = layout.render_full_slip(office_name=self.config.office_name, service_name=service.name,
                                       issued_at=now, last_day=days[-1] if days else now.date(),
                                       paper=self.paper)
        # Checked before and after like a ticket: a slip cut short by an empty roll is not
        # "printed", and the printer's state is recorded for the LEDs and the agent. Before: the
        # press was checked, but an owed reprint since then may have emptied the roll.
        if not self.printer_status.can_print:
            error = f"printer {self.printer_status.value} before the slip was sent"
        else:
            error = self._send(data)
        if error is None and not (after := self._check_printer()).can_print:
            error = f"printer {after.value} after the slip was sent"
        if error is not None:
            log.error("quota-full slip not printed; the citizen needs staff", extra={"service": service.code,
                                                                                    "error": error})
        return Outcome(PressKind.FULL, service.code, printed=error is None, reason=error or "")

    def reprint(self, code: str, day, number: int) -> Ticket:
        """Staff reprint: marked CETAK ULANG so two slips with one number are told apart."""
        ticket = self.ledger.request_reprint(code, day, number, self.clock.now())
        if self._check_printer().can_print:
            self._print_owed()
        if self.ledger.reprint_pending(ticket.id):
            raise PrinterError(f"reprint of {ticket.label} is queued: the printer is {self.printer_status.value}; "
                               "it prints as soon as the printer is back")
        return ticket

    def _test_prints(self) -> None:
        for request_id in self.ledger.requests(RequestKind.TEST_PRINT):
            self.beat()
            now = self.clock.now()
            data = layout.render_test_slip(office_name=self.config.office_name, kiosk_id=self.config.id,
                                           printed_at=now, printer=self.printer_status.value, paper=self.paper)
            error = self._send(data)
            if error is not None:
                self.ledger.request_done(RequestDone(request_id, RequestKind.TEST_PRINT, ok=False, error=error), now)
                return
            status = self._check_printer()
            self.ledger.request_done(RequestDone(request_id, RequestKind.TEST_PRINT, ok=status.can_print,
                                                 printer=status), now)

    def _burst_alarm(self, code: str, now) -> None:
        guard = self.guard
        alarm = BurstAlarm(code, guard.burst_count(code), guard.burst_window_s)
        log.warning("burst alarm: many tickets in a short time", extra=alarm.to_json())
        self.ledger.record_event(alarm, now)

    # ------------------------------------------------------------ printer, clock, LEDs

    def tick(self) -> None:
        """Idle housekeeping: printer status, owed reprints, requests, clock, LEDs (the day may roll)."""
        if self._check_printer().can_print:
            self._print_owed()
            self._test_prints()
        self.beat()
        self._check_clock()
        self._check_buttons()
        self._refresh_leds()

    def _open_printer(self) -> None:
        try:
            self.printer.open()
            self._open_error = None
        except PrinterError as exc:
            # Tried at every fault poll (a replug is picked up at once), but said once per cause,
            # not four times a second into the journal on the SD card.
            if str(exc) != self._open_error:
                self._open_error = str(exc)
                log.error("printer not available", extra={"error": str(exc)})

    def _check_printer(self) -> PrinterStatus:
        if not self.printer.is_open:
            self._open_printer()  # a replugged printer comes back without a restart
        status = self.printer.status()
        if status is PrinterStatus.OFFLINE:
            self.printer.close()  # so a replugged device gets a fresh handle
        self.printer_status = status
        if self._record_state("printer", status, status.value, PrinterState(status)):
            log.info("printer state", extra={"printer": status.value})
        return status

    def _check_clock(self) -> None:
        take_confirmations(self.clock, self.ledger)
        # Once a day even when nothing changed, so the ledger keeps up with a quiet kiosk's trusted
        # time (a reader, or the kiosk after a restart, measures a leap from it). The reason names
        # the drifting system time; only a change of verdict or day is news. A held jump is in the
        # record, so a restart judges the clock as this run did.
        value = clock_record(self.clock, self.clock.now())
        news = ClockSuspect.from_json(value) if value["suspect"] else None  # not the kept time
        verdict = (value["verdict"], value["day"], self.clock.steps)
        if self._record_state("clock", verdict, value, news):
            if value["suspect"]:
                log.warning("clock suspect", extra={"reason": value["reason"]})

    def _check_buttons(self) -> None:
        """A button source that can lose its link (the USB panel) says so in the kiosk's state."""
        if not hasattr(self.buttons, "connected"):
            return
        state = ButtonsState(bool(self.buttons.connected), getattr(self.buttons, "last_error", None))
        value = state.to_json()  # kept in kiosk_state as the event says it
        if self._record_state("buttons", (state.connected, state.error), value, state):
            log.log(logging.INFO if state.connected else logging.WARNING, "button panel", extra=value)

    def _record_state(self, key: str, verdict, value, event: EventPayload | None) -> bool:
        """Write ``value`` under ``key`` (and ``event``) when ``verdict`` changed; whether it changed.

        Compared in memory first: these run every idle second, and the ledger is on an SD card."""
        if self._verdicts.get(key, _UNSEEN) == verdict:
            return False
        self._verdicts[key] = verdict
        self.ledger.set_state(key, value, self.clock.now(), event)
        return True

    def _refresh_leds(self) -> None:
        if self.buttons is None:
            return
        if not self.printer_status.can_print:  # every LED off, or blinking where a press was refused
            for service in self.config.services:
                refused = self._refused_until.get(service.code, 0) > time.monotonic()
                self._set_led(service.code, LedMode.FAST if refused else LedMode.OFF)
            return
        for row in service_status(self.config, self.ledger, self.clock.now()):
            self._set_led(row["code"], LedMode.ON if row["today_open"] else LedMode.SLOW)

    def _set_led(self, code: str, mode: LedMode) -> None:
        if self.buttons is not None and self._leds.get(code) is not mode:
            self._leds[code] = mode
            self.buttons.set_led(code, mode)

    def _report_unconfirmed(self) -> None:
        # A power cut between commit and print confirmation: the slip may be whole, partial or
        # missing. Reprinting blindly could give one number twice, so staff decide (kiosk reprint).
        today = self.clock.now().date()
        owed = [f"{t.label} {t.service_day}" for t in self.ledger.unconfirmed() if t.service_day >= today]
        for label in owed:
            log.warning("print not confirmed before restart; reprint if the citizen asks",
                        extra={"ticket": label})
        self.ledger.set_state("unconfirmed_prints", owed, self.clock.now())

    def snapshot(self) -> dict:
        return snapshot(self.config, self.ledger, self.clock, self.printer_status.value)


def build_kiosk(config: Config, printer: Printer | None = None, buttons=None, system_clock=time.time,
                monotonic=time.monotonic, ntp_state=ntp_synced) -> Kiosk:
    """Build a kiosk from config: ledger, clock, key, printer and guard. Opens nothing yet but the ledger."""
    from kiosk.printer import make_printer

    try:
        os.makedirs(config.data_dir, exist_ok=True)
    except OSError as exc:
        raise KioskError(f"cannot create data_dir {config.data_dir!r}: {exc.strerror}; "
                         "create it and give the kiosk user write access") from None
    tz = config.tz
    ledger = Ledger(config.ledger_path, config.office_id, tz)
    clock = ledger_clock(config, ledger, system=system_clock, monotonic=monotonic, synced=ntp_state)
    ledger.prune_events(clock.now())
    expire_confirmations(clock, ledger)  # asked while no kiosk ran: never applied later
    b = config.buttons
    guard = PressGuard(b["cooldown_ms"] / 1000, b["burst_max_tickets"], b["burst_window_minutes"] * 60)
    layout.prepare(os.path.join(config.data_dir, "cache"))
    printer = printer or make_printer(**printer_options(config))
    return Kiosk(config, ledger, printer, clock, load_or_create_key(config.data_dir), guard, buttons)


def slowest_ticket_s(config: Config, ticket_bytes: int) -> float:
    """How long one ticket of ``ticket_bytes`` may keep the worker between two beats on a printer link
    (a backend whose WRITE_MAY_STALL): its wire time (serial), a stall up to write_timeout_ms, and the status
    questions after it."""
    p = config.printer
    wire = ticket_bytes * BITS_PER_BYTE / p["baud_rate"] if p["backend"] == "serial" else 0.0
    return wire + p["write_timeout_ms"] / 1000 + STATUS_QUESTIONS * p["status_timeout_ms"] / 1000


def printer_options(config: Config) -> dict:
    """make_printer's arguments: the chosen backend and what its class takes from [printer]."""
    backend = config.printer["backend"]
    return {"backend": backend, **PRINTERS.load(backend).arguments(config.printer, config)}


def buttons_from_config(config: Config, stream=None):
    """The chosen button source, built from [buttons]; ``stream`` feeds a source that reads keys (the demo)."""
    from kiosk.buttons import BACKENDS, ButtonSpec

    specs = [ButtonSpec(s.code, s.button, s.led) for s in config.services]
    source = BACKENDS.load(config.buttons["backend"])
    arguments = source.arguments(config.buttons, config)
    if stream is not None:
        arguments["stream"] = stream
    return source(specs, **arguments)


def run_kiosk(config: Config, buttons) -> int:
    """Serve presses until the button source ends or SIGTERM; then finish what is queued."""
    import signal

    from kiosk import lock

    lock.hold(config.data_dir)  # held until the process ends
    Heartbeat(config.data_dir).start()  # alive from the first instant: opening the printer may take seconds
    kiosk = build_kiosk(config, buttons=buttons)
    signal.signal(signal.SIGTERM, lambda *_: kiosk.ended.set())
    kiosk.start()
    log.info("ready", extra={"kiosk_id": config.id, "printer": kiosk.printer_status.value,
                             "services": [s.code for s in config.services]})
    kiosk.notifier.ready()
    try:
        kiosk.ended.wait()
    except KeyboardInterrupt:
        pass
    kiosk.notifier.stopping()
    kiosk.drain()
    kiosk.stop()
    kiosk.heartbeat.stopped()  # so readers say "stopped", not "crashed"
    log.info("stopped")
    return 0
