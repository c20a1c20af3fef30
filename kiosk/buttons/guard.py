"""Which presses become tickets: pure logic, the clock is passed in.

A source reports every press; the guard turns a bouncing contact or an
impatient second press into one ticket, and notices when one service is
being hoarded (someone taking places to sell them outside). The button
panel's replayed lines are refused before that, by :class:`ReplayGuard`.
"""

import threading
import time
from collections import OrderedDict, deque

from kiosk.buttons.errors import ButtonError


class PressGuard:
    """Per-service cooldown and burst alarm. Safe to call from several threads."""

    def __init__(self, cooldown_s: float = 2.0, burst_max: int = 10,
                 burst_window_s: float = 300.0, clock=time.monotonic):
        _check("cooldown_s", cooldown_s, cooldown_s >= 0, "use 0 or more seconds, e.g. 2")
        _check("burst_max", burst_max, isinstance(burst_max, int) and burst_max >= 1,
               "use 1 or more, e.g. 10")
        _check("burst_window_s", burst_window_s, burst_window_s > 0, "use more than 0 seconds, e.g. 300")
        self.cooldown_s = cooldown_s
        self.burst_max = burst_max
        self.burst_window_s = burst_window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_accepted = {}  # service -> time of its last accepted press
        self._tickets = {}  # service -> deque of recent ticket times, at most burst_max + 1
        self._alarmed = set()  # services whose burst alarm has fired and not re-armed

    def accept(self, service: str) -> bool:
        """True if this press should become a ticket; False within ``cooldown_s`` of the last one."""
        with self._lock:
            now = self._clock()
            last = self._last_accepted.get(service)
            if last is not None and now - last < self.cooldown_s:
                return False
            self._last_accepted[service] = now
            return True

    def record_ticket(self, service: str) -> bool:
        """Note an issued ticket; True exactly once when ``service`` exceeds ``burst_max`` in the window."""
        with self._lock:
            now = self._clock()
            times = self._tickets.setdefault(service, deque(maxlen=self.burst_max + 1))
            times.append(now)
            if self._count(service, now) <= self.burst_max or service in self._alarmed:
                return False
            self._alarmed.add(service)
            return True

    def burst_count(self, service: str) -> int:
        """Tickets of ``service`` in the current window, capped at ``burst_max + 1``."""
        with self._lock:
            return self._count(service, self._clock())

    def _count(self, service: str, now: float) -> int:
        times = self._tickets.get(service, ())
        while times and now - times[0] >= self.burst_window_s:
            times.popleft()
        if len(times) <= self.burst_max:
            self._alarmed.discard(service)  # back to normal: the next burst alarms again
        return len(times)


def _check(name: str, value, ok: bool, fix: str) -> None:
    if not ok:
        raise ButtonError(f"PressGuard {name}={value!r} is invalid; {fix}")


class ReplayGuard:
    """Which panel presses are new: each ``(boot, seq)`` at most once, boot ids remembered long.

    A press is unique by the panel's power-up (its random boot id) and its
    number in that power-up (``seq``, from 1). A line replayed later (by a
    USB bridge, a buffer, or someone with the cable) repeats both, so it is
    refused for as long as its boot is remembered: ``keep_boots`` boot ids,
    the least recently heard forgotten first. Nothing a line says can lower
    what is remembered: a heartbeat whose ``up`` or ``seq`` went back, or a
    HELLO for a boot already seen, changes nothing. (A real new power-up
    draws a new 32-bit boot id.) Pure logic, used from the panel's reader
    thread only.
    """

    def __init__(self, keep_boots: int = 1024):
        _check("keep_boots", keep_boots, isinstance(keep_boots, int) and keep_boots >= 1, "use e.g. 1024")
        self.keep_boots = keep_boots
        self._last: "OrderedDict[int, int]" = OrderedDict()  # boot -> highest seq accounted for

    def hello(self, boot: int) -> None:
        """A power-up (or its answer to HELLO?): a new boot's presses start at 1."""
        self._heard(boot, self._last.get(boot, 0))

    def press(self, boot: int, seq: int) -> tuple[bool, int]:
        """(is this a new press, how many presses before it never arrived)."""
        last = self._last.get(boot)
        if last is not None and seq <= last:
            self._heard(boot, last)
            return False, 0
        self._heard(boot, seq)
        return True, 0 if last is None else seq - last - 1

    def heartbeat(self, boot: int, seq: int) -> int:
        """Presses the heartbeat says were sent but never arrived; they can no longer be claimed."""
        last = self._last.get(boot)
        if last is None:  # first heard by its heartbeat: its earlier presses are not ours to claim
            self._heard(boot, seq)
            return 0
        self._heard(boot, max(seq, last))
        return max(0, seq - last)

    def knows(self, boot: int) -> bool:
        return boot in self._last

    def _heard(self, boot: int, last: int) -> None:
        self._last[boot] = last
        self._last.move_to_end(boot)
        while len(self._last) > self.keep_boots:
            self._last.popitem(last=False)
