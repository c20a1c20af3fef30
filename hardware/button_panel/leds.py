"""LED pattern state: pure logic, the clock is passed in.

``set(mode)`` chooses "on", "off", "slow" (1 s on, 1 s off: today is full)
or "fast" (0.15 s on, 0.15 s off: printing). ``value(now)`` says whether
the LED is lit at ``now`` (a ticks_ms value). Setting the mode it already
has does not restart the blink, so a repeated LED command never stutters.
"""

MODES = ("on", "off", "slow", "fast")
# (ms on, ms off)
BLINK = {"slow": (1000, 1000), "fast": (150, 150)}


def _subtract(a, b):
    return a - b


class LedPattern:
    def __init__(self, ticks_diff=None, mode="off"):
        self.ticks_diff = ticks_diff or _subtract
        self.mode = "off"
        self._start = None
        self._phase = 0
        self.set(mode)

    def set(self, mode):
        if mode not in MODES:
            raise ValueError("bad_mode: LED mode " + repr(mode) + " is not one of on, off, slow, fast")
        if mode != self.mode:
            self.mode = mode
            self._start = None  # the blink starts lit at the next value()

    def value(self, now):
        if self.mode == "on":
            return True
        if self.mode == "off":
            return False
        on_ms, off_ms = BLINK[self.mode]
        period = on_ms + off_ms
        if self._start is None:
            self._start = now
            self._phase = 0
        elapsed = self.ticks_diff(now, self._start) + self._phase
        if elapsed < 0:  # a clock that went backwards: start the blink again
            self._start, self._phase, elapsed = now, 0, 0
        elif elapsed >= period:
            # Re-base so ticks_diff never spans more than a period or so: ticks
            # wrap on the Pico, and ticks_diff is only right within half a wrap.
            self._phase = elapsed % period
            self._start = now
            elapsed = self._phase
        return elapsed < on_ms
