"""One button, debounced: pure logic, the pin and the clock are passed in.

``poll()`` is called often (every few ms) and returns "press" once when the
contact has been closed for ``stable_ms``, "hold" once when it has stayed
closed for ``long_ms``, otherwise None. Holding a button gives ONE press;
a bouncing contact gives one press too, because a level counts only after
it has been steady for ``stable_ms``.
"""

PRESS = "press"
HOLD = "hold"


class Debouncer:
    def __init__(self, read_pin, ticks_ms, ticks_diff, stable_ms=30, long_ms=2000, active_low=True):
        self.read_pin = read_pin
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.stable_ms = stable_ms
        self.long_ms = long_ms
        self.active_low = active_low
        # A button already closed at power-up is treated as stuck, not as a press:
        # it must be released before it can press.
        self.pressed = self._read()
        self._raw = self.pressed
        self._raw_since = ticks_ms()
        self._pressed_at = self._raw_since
        self._held = True if self.pressed else False
        self.hold_ms = 0  # how long the button had been down when "hold" was reported

    def _read(self):
        value = self.read_pin()
        return (not value) if self.active_low else bool(value)

    def poll(self):
        now = self.ticks_ms()
        raw = self._read()
        if raw != self._raw:
            self._raw = raw
            self._raw_since = now
            return None
        if raw != self.pressed and self.ticks_diff(now, self._raw_since) >= self.stable_ms:
            self.pressed = raw
            if raw:
                self._pressed_at = self._raw_since
                self._held = False
                return PRESS
            return None
        if self.pressed and not self._held:
            down = self.ticks_diff(now, self._pressed_at)
            if down >= self.long_ms:
                self._held = True
                self.hold_ms = down
                return HOLD
        return None
