"""Service buttons on a Pico button panel over USB serial (protocol v1, docs/button-panel.md).

The panel's firmware and this backend share ``button_panel.protocol``. A
reader thread owns the port: it opens it, asks ``HELLO?``, re-sends the LED
modes, turns each PRESS into ``on_press(service)`` at most once per
(boot, seq) (:class:`kiosk.buttons.guard.ReplayGuard`), and reopens the port by
itself after an unplug or a silent panel.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence

from button_panel import protocol

from common.tables import Key
from kiosk.buttons import ButtonSource, ButtonSpec, LedMode
from kiosk.buttons.errors import ButtonError
from kiosk.buttons.guard import ReplayGuard

log = logging.getLogger("kiosk.buttons")

READ_TIMEOUT_S = 0.05
KEEP_BOOTS = 1024  # boot ids remembered for replay detection: years of power cuts, ~200 KB (measured)


class PanelButtons(ButtonSource):
    """Button index i on the panel is the i-th ButtonSpec's service; so is LED i.

    Observable state for health checks and tests: ``connected`` (a panel line
    arrived within ``heartbeat_timeout_ms``), ``last_error``, ``garbage``
    (lines dropped as noise; per cause in ``garbage_causes``), ``missed`` (presses the panel counted that
    never arrived), ``duplicates`` (replayed presses ignored), ``holds``,
    ``panel_errors`` and ``panel`` (fields of the last HELLO).
    """

    OPTIONS = {
        "panel_port": Key("str", "", needed='"/dev/antrean-panel"'),
        "panel_baud_rate": Key("int", 115200, limits=(1200, 4_000_000)),
        "panel_heartbeat_timeout_ms": Key("int", 3000, limits=(1000, 60_000)),  # the panel beats every 1000 ms
        "panel_reconnect_s": Key("float", 1.0, limits=(0.1, 600)),
    }
    ARGUMENTS = {"panel_port": "port", "panel_baud_rate": "baud_rate",
                 "panel_heartbeat_timeout_ms": "heartbeat_timeout_ms", "panel_reconnect_s": "reconnect_s"}

    def __init__(self, buttons: Sequence[ButtonSpec], port: str, baud_rate: int = 115200,
                 heartbeat_timeout_ms: int = 3000, reconnect_s: float = 1.0):
        super().__init__(buttons)
        if len(self.buttons) > protocol.MAX_BUTTONS:
            raise ButtonError(f"a button panel has at most {protocol.MAX_BUTTONS} buttons, "
                              f"{len(self.buttons)} services are configured; use gpio or a second kiosk")
        if not isinstance(port, str) or not port:
            raise ButtonError(f"panel port {port!r} is invalid; set buttons.panel_port, e.g. /dev/ttyACM0")
        if not isinstance(baud_rate, int) or baud_rate <= 0:
            raise ButtonError(f"panel baud_rate {baud_rate!r} is invalid; use e.g. 115200")
        if not isinstance(heartbeat_timeout_ms, int) or heartbeat_timeout_ms < 1000:
            raise ButtonError(f"heartbeat_timeout_ms {heartbeat_timeout_ms!r} is invalid; "
                              "use 1000 or more (the panel beats every 1000 ms), e.g. 3000")
        if not isinstance(reconnect_s, (int, float)) or reconnect_s <= 0:
            raise ButtonError(f"reconnect_s {reconnect_s!r} is invalid; use more than 0, e.g. 1.0")
        self.port = port
        self.baud_rate = baud_rate
        self.heartbeat_timeout_s = heartbeat_timeout_ms / 1000
        self.reconnect_s = reconnect_s
        self._index = {spec.service: i for i, spec in enumerate(self.buttons)}
        self.leds: dict[str, LedMode] = {}
        self.connected = False
        self.last_error: str | None = None
        self.garbage = 0
        self.missed = 0
        self.duplicates = 0
        self.holds = 0
        self.panel_errors = 0
        self.connects = 0
        self.panel: dict | None = None
        self.garbage_causes: Counter = Counter()  # ERR code word -> lines dropped for it
        self._warned: set[str] = set()  # garbage causes logged on this connection: once each
        self._replays = ReplayGuard(KEEP_BOOTS)
        self._serial = None
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()

    @classmethod
    def config_problems(cls, options: dict, services) -> list[str]:
        if len(services) <= protocol.MAX_BUTTONS:
            return []
        return [f"buttons.backend = \"panel\" with {len(services)} [[services]]: the button panel has at most "
                f"{protocol.MAX_BUTTONS} buttons; configure at most {protocol.MAX_BUTTONS} services, "
                "or use backend = \"gpio\""]

    # ------------------------------------------------------------ the seam

    def _start(self, on_press, on_end) -> None:
        # A panel never runs dry: on_end is never called.
        self._thread = threading.Thread(target=self._run, args=(on_press,), name="kiosk-panel", daemon=True)
        self._thread.start()

    def _set_led(self, service: str, mode: LedMode) -> None:
        self.leds[service] = mode
        self._send_led(service, mode)

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._drop_port()
        self._set_state(False, self.last_error)

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked on each state change); for tests and health."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
            return True

    # ------------------------------------------------------------ the reader thread

    def _run(self, on_press) -> None:
        while not self._stop.is_set():
            try:
                self._open()
            except OSError as exc:
                self._lost(f"cannot open panel at {self.port!r}: {exc}; check the USB cable and buttons.panel_port")
                self._stop.wait(self.reconnect_s)
                continue
            try:
                self._serve(on_press)
            except OSError as exc:
                if not self._stop.is_set():
                    self._lost(f"panel at {self.port!r} went away: {exc}")
            self._drop_port()
            if not self._stop.is_set():
                self._stop.wait(self.reconnect_s)

    def _open(self) -> None:
        import serial

        try:
            port = serial.Serial(self.port, self.baud_rate, timeout=READ_TIMEOUT_S, write_timeout=1.0,
                                 exclusive=True)
        except (serial.SerialException, ValueError) as exc:
            raise OSError(str(exc)) from None
        self._serial = port
        self.connects += 1
        self._warned.clear()  # a new connection may have a new cause (wrong baud rate, other device)
        self._write(protocol.encode(protocol.HELLO_Q))
        self._resend_leds()

    def _serve(self, on_press) -> None:
        import serial

        lines = protocol.LineBuffer()
        heard = time.monotonic()  # the port just opened: give the panel a full timeout to speak
        asked = heard
        while not self._stop.is_set():
            try:
                chunk = self._serial.read(self._serial.in_waiting or 1)
            except (serial.SerialException, TypeError, AttributeError) as exc:
                raise OSError(str(exc)) from None
            now = time.monotonic()
            for line in lines.push(chunk):
                if self._line(line, on_press):
                    heard = now
                    if not self.connected:
                        self._set_state(True, None)
                        log.info("button panel connected", extra={"port": self.port})
            if now - heard > self.heartbeat_timeout_s:
                self._lost(f"no heartbeat from the panel at {self.port!r} for "
                           f"{self.heartbeat_timeout_s:.1f} s; is its firmware running?")
                if now - asked > self.reconnect_s:
                    asked = now
                    self._write(protocol.encode(protocol.HELLO_Q))

    def _line(self, line, on_press) -> bool:
        """Act on one panel line; True if it was a valid panel line (the panel is alive)."""
        try:
            if line is None:
                raise ValueError("too_long: line longer than 80 characters")
            verb, fields = protocol.decode(line)
            if verb == protocol.PRESS:
                self._press(fields, on_press)
            elif verb == protocol.HB:
                self._heartbeat(fields)
            elif verb == protocol.HELLO:
                self._hello(fields)
            elif verb == protocol.HOLD:
                self.holds += 1
                log.info("panel button held", extra={"fields": fields})
            elif verb == protocol.ERR:
                self.panel_errors += 1
                self._warn_once(f"ERR {fields.get('code')}", "panel reports an error: %s", fields.get("code"))
            else:
                raise ValueError(f"unknown_verb: {verb!r}")
        except ValueError as exc:
            self._garbage(exc, line)
            return False
        return True

    def _garbage(self, exc: ValueError, line) -> None:
        """Count every dropped line, but warn once per cause per connection: a noisy cable or a
        wrong baud rate gives hundreds a minute, and the journal is on the SD card."""
        cause = protocol.error_code(exc)
        self.garbage += 1
        self.garbage_causes[cause] += 1
        self._warn_once(cause, "panel line ignored (%s): %r; further %s lines on this connection are only "
                               "counted (garbage_causes)", exc, line, cause)

    def _warn_once(self, cause: str, message: str, *args) -> None:
        level = logging.DEBUG if cause in self._warned else logging.WARNING
        self._warned.add(cause)
        log.log(level, message, *args)

    def _press(self, fields, on_press) -> None:
        boot = _boot(fields)
        seq = protocol.int_field(fields, "seq", 1, 10**9)
        index = protocol.int_field(fields, "b", 0, protocol.MAX_BUTTONS - 1)
        if index >= len(self.buttons):
            raise ValueError(f"bad_button: button {index} has no service; {len(self.buttons)} are configured")
        new, missed = self._replays.press(boot, seq)
        if not new:
            self.duplicates += 1
            log.info("replayed press ignored", extra={"boot": f"{boot:08X}", "seq": seq})
            return
        if missed:
            self._missed(missed, boot)
        self._report(on_press, self.buttons[index].service)

    def _heartbeat(self, fields) -> None:
        boot = _boot(fields)
        seq = protocol.int_field(fields, "seq", 0, 10**9)
        protocol.int_field(fields, "up", 0, 10**9)  # checked, never trusted: it cannot reset the guard
        missed = self._replays.heartbeat(boot, seq)
        if missed:
            self._missed(missed, boot)

    def _hello(self, fields) -> None:
        self.panel = dict(fields)
        boot = _boot(fields)
        count = protocol.int_field(fields, "buttons", 1, protocol.MAX_BUTTONS)
        if count < len(self.buttons):
            log.warning("panel has %d buttons but %d services are configured", count, len(self.buttons))
        self._replays.hello(boot)
        self._resend_leds()  # a panel that just booted has all LEDs off

    def _missed(self, count: int, boot: int) -> None:
        self.missed += count
        log.warning("panel presses lost on the wire", extra={"boot": f"{boot:08X}", "missed": count})

    # ------------------------------------------------------------ port and state

    def _resend_leds(self) -> None:
        for service, mode in list(self.leds.items()):
            self._send_led(service, mode)

    def _send_led(self, service: str, mode: LedMode) -> None:
        line = protocol.encode(protocol.LED, (("b", self._index[service]), ("m", mode.value)))
        try:
            self._write(line)
        except OSError as exc:
            log.warning("LED command for %s not sent (%s); it is re-sent on reconnect", service, exc)

    def _write(self, line: str) -> None:
        import serial

        with self._write_lock:
            port = self._serial
            if port is None:
                return  # not connected: the mode is kept and sent on reconnect
            try:
                port.write(line.encode("ascii"))
            except (serial.SerialException, TypeError, AttributeError) as exc:
                raise OSError(str(exc)) from None

    def _drop_port(self) -> None:
        with self._write_lock:
            port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except Exception:  # a port gone with its cable may fail to close; it is closed either way
                pass

    def _lost(self, error: str) -> None:
        if self.connected or self.last_error != error:
            log.warning("button panel disconnected: %s", error)
        self._set_state(False, error)

    def _set_state(self, connected: bool, error: str | None) -> None:
        with self._changed:
            self.connected = connected
            self.last_error = error
            self._changed.notify_all()


def _boot(fields) -> int:
    return protocol.parse_boot(fields.get("boot", ""))
