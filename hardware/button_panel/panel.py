"""The panel's main loop body: buttons in, protocol lines out, LED commands in.

Pure logic: pins, LEDs, the clock, the serial line, the random boot id and
the watchdog are all passed in, so the same code runs on the Pico (main.py)
and under CPython in the tests. Call :meth:`Panel.step` every few ms and
:meth:`Panel.handle_line` for each line the host sends.
"""

from . import protocol
from .debounce import HOLD, PRESS, Debouncer
from .leds import LedPattern

FW_VERSION = "1.1.0"  # 1.1: 32-bit boot ids
HEARTBEAT_MS = 1000


class Panel:
    """``buttons``: one read_pin() per button (raw level, active low), at most 8.
    ``leds``: one set_led(lit) per button that has an LED (None where it has none).
    ``write_line(text)`` sends one whole line including its "\\n".
    ``rand_boot()`` returns a random int; its low 32 bits are this power-up's boot id.
    ``feed_watchdog()`` is called once at the end of every completed step().
    """

    def __init__(self, buttons, leds, write_line, ticks_ms, ticks_diff, rand_boot, feed_watchdog,
                 stable_ms=30, long_ms=2000, heartbeat_ms=HEARTBEAT_MS, fw=FW_VERSION):
        if not buttons or len(buttons) > protocol.MAX_BUTTONS:
            raise ValueError("a panel has 1 to " + str(protocol.MAX_BUTTONS) + " buttons")
        if len(leds) > len(buttons):
            raise ValueError("more LEDs than buttons")
        self.write_line = write_line
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.feed_watchdog = feed_watchdog
        self.heartbeat_ms = heartbeat_ms
        self.fw = fw
        self.boot = protocol.boot_id(rand_boot())
        self.debouncers = [Debouncer(pin, ticks_ms, ticks_diff, stable_ms, long_ms) for pin in buttons]
        self.leds = list(leds) + [None] * (len(buttons) - len(leds))
        self.patterns = [LedPattern(ticks_diff) for _ in buttons]
        self._lit = [None] * len(buttons)  # what each LED shows now; None: not yet driven
        self.seq = 0  # last press number of this boot
        self.steps = 0
        self._hello_due = True
        now = ticks_ms()
        self._last = now
        self._last_hb = now
        self.uptime_ms = 0

    # ------------------------------------------------------------ lines out

    def _send(self, verb, fields):
        self.write_line(protocol.encode(verb, fields))

    def hello(self):
        self._send(protocol.HELLO, (("v", protocol.VERSION), ("fw", self.fw),
                                    ("buttons", len(self.debouncers)), ("boot", self.boot)))

    def error(self, code):
        self._send(protocol.ERR, (("code", code),))

    # ------------------------------------------------------------ the loop

    def step(self):
        """Poll buttons, send PRESS/HOLD/HB, drive LEDs, then feed the watchdog."""
        now = self.ticks_ms()
        self.uptime_ms += self.ticks_diff(now, self._last)
        self._last = now
        if self._hello_due:
            self._hello_due = False
            self.hello()
        for index in range(len(self.debouncers)):
            deb = self.debouncers[index]
            event = deb.poll()
            if event == PRESS:
                self.seq += 1
                self._send(protocol.PRESS, (("boot", self.boot), ("seq", self.seq), ("b", index)))
            elif event == HOLD:
                self._send(protocol.HOLD, (("boot", self.boot), ("seq", self.seq), ("b", index),
                                           ("ms", deb.hold_ms)))
        if self.ticks_diff(now, self._last_hb) >= self.heartbeat_ms:
            self._last_hb = now
            self._send(protocol.HB, (("boot", self.boot), ("seq", self.seq), ("up", self.uptime_ms // 1000)))
        for index in range(len(self.leds)):
            led = self.leds[index]
            if led is None:
                continue
            lit = self.patterns[index].value(now)
            if lit != self._lit[index]:
                self._lit[index] = lit
                led(lit)
        self.steps += 1
        self.feed_watchdog()  # only a loop that got this far keeps the Pico alive

    # ------------------------------------------------------------ lines in

    def handle_line(self, line):
        """Act on one host line; answer ERR code=... for anything wrong. Returns the verb or None."""
        if line is None:  # LineBuffer's mark for an overlong line
            self.error(protocol.TOO_LONG)
            return None
        try:
            verb, fields = protocol.decode(line)
        except ValueError as exc:
            self.error(protocol.error_code(exc))
            return None
        if verb == protocol.HELLO_Q:
            self.hello()
            return verb
        if verb == protocol.LED:
            try:
                index = protocol.int_field(fields, "b", 0, protocol.MAX_BUTTONS - 1)
            except ValueError:
                self.error(protocol.BAD_BUTTON)
                return None
            if index >= len(self.patterns):
                self.error(protocol.BAD_BUTTON)
                return None
            mode = fields.get("m")
            if mode not in protocol.LED_MODES:
                self.error(protocol.BAD_MODE)
                return None
            self.patterns[index].set(mode)
            return verb
        self.error(protocol.UNKNOWN_VERB)
        return None

    def led_mode(self, index):
        return self.patterns[index].mode
