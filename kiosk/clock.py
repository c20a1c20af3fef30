"""A clock that never runs backwards past the ledger.

The Pi has no real-time clock: after a power cut with the network down it
boots with a stale time, possibly days behind. Issuing on that time would
print tickets for days already served, so the kiosk runs on the later of
the system clock and the latest time already in the ledger, and says the
clock is suspect while the system clock is behind.
"""

import datetime as dt
import time

# A system clock before this cannot be right: the software did not exist yet.
EARLIEST_PLAUSIBLE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
# Small backward steps (NTP slewing, a leap second) are not worth an alarm.
TOLERANCE = dt.timedelta(seconds=60)


class SafeClock:
    def __init__(self, tz, high_water: dt.datetime | None = None, system=time.time):
        self.tz = tz
        self._system = system
        self.high_water = high_water

    def system_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._system(), self.tz)

    def now(self) -> dt.datetime:
        """The later of the system clock and the ledger's latest time, in the office timezone."""
        system = self.system_now()
        if self.high_water is None or system >= self.high_water:
            return system
        return self.high_water.astimezone(self.tz)

    def advance(self, moment: dt.datetime) -> None:
        """Record that ``moment`` is now in the ledger; the clock will not go back before it."""
        if self.high_water is None or moment > self.high_water:
            self.high_water = moment

    @property
    def suspect(self) -> bool:
        return self.suspect_reason is not None

    @property
    def suspect_reason(self) -> str | None:
        system = self.system_now()
        if system < EARLIEST_PLAUSIBLE:
            return f"system clock {system:%Y-%m-%d %H:%M} is before {EARLIEST_PLAUSIBLE:%Y-%m-%d}"
        if self.high_water is not None and system < self.high_water - TOLERANCE:
            return (f"system clock {system:%Y-%m-%d %H:%M} is behind the ledger's latest time "
                    f"{self.high_water.astimezone(self.tz):%Y-%m-%d %H:%M}")
        return None
