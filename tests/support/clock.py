"""Office time for tests and benchmarks: Jakarta moments and a system clock the test sets."""

import datetime as dt
from zoneinfo import ZoneInfo

JAKARTA = ZoneInfo("Asia/Jakarta")


def at(text: str) -> dt.datetime:
    """A moment in office time: at("2026-11-23 09:00")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=JAKARTA)


class FakeSystemClock:
    """Stands in for time.time: the test sets the system clock like a bad RTC would.

    ``monotonic`` stands in for time.monotonic, which no one can set: ``set`` moves only the
    system clock, ``advance`` lets real time pass on both."""

    def __init__(self, moment: dt.datetime):
        self.value = moment.timestamp()
        self.elapsed = 0.0
        self.ntp_synced = False  # what adjtimex(2) would say: a time server keeps this clock

    def ntp_state(self) -> bool:
        return self.ntp_synced

    def set(self, moment: dt.datetime) -> None:
        self.value = moment.timestamp()

    def advance(self, delta: dt.timedelta) -> None:
        self.value += delta.total_seconds()
        self.elapsed += delta.total_seconds()

    def monotonic(self) -> float:
        return self.elapsed

    def __call__(self) -> float:
        return self.value


class ManualClock:
    """A clock (a stand-in for time.monotonic or time.time) that says ``now`` until the test moves it."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
