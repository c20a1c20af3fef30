"""A clock that never runs backwards past the ledger, nor leaps far ahead of it unconfirmed.

The Pi has no real-time clock: after a power cut with the network down it
boots with a stale time, possibly days behind. Issuing on that time would
print tickets for days already served, so the kiosk runs on the later of
the system clock and the latest time already in the ledger, and says the
clock is suspect while the system clock is behind.

A clock far *ahead* (a mistyped ``date``, a bad RTC or time server) is
worse: tickets for next year would hold the ledger's time there for a
year. So a system clock more than ``max_leap`` ahead of the last time the
kiosk trusted (carried forward by the monotonic clock while it runs) is not
taken: the kiosk goes on from the trusted time, says the clock is suspect,
and waits for the clock to be corrected or for staff to confirm it
(``kiosk clock confirm``).
"""

import datetime as dt
import time

# A system clock before this cannot be right: the software did not exist yet.
EARLIEST_PLAUSIBLE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
# Small backward steps (NTP slewing, a leap second) are not worth an alarm.
TOLERANCE = dt.timedelta(seconds=60)
# Longer than a Lebaran closure with the kiosk switched off; a mistyped year or month is caught.
DEFAULT_MAX_LEAP = dt.timedelta(days=14)


class SafeClock:
    def __init__(self, tz, high_water: dt.datetime | None = None, system=time.time,
                 monotonic=time.monotonic, max_leap: dt.timedelta = DEFAULT_MAX_LEAP):
        self.tz = tz
        self._system = system
        self._monotonic = monotonic
        self.max_leap = max_leap
        self.high_water = high_water
        self._trusted = (high_water, monotonic())  # the last good time, and when (monotonic) it was

    def system_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._system(), self.tz)

    def now(self) -> dt.datetime:
        """The time tickets are issued on, in the office timezone; never before the ledger's latest."""
        system = self.system_now()
        if self._leap(system) is not None:
            return self._later(self._expected())
        if self.high_water is None or system >= self.high_water:
            self._trusted = (system, self._monotonic())
        return self._later(system)

    def advance(self, moment: dt.datetime) -> None:
        """Record that ``moment`` is now in the ledger; the clock will not go back before it."""
        if self.high_water is None or moment > self.high_water:
            self.high_water = moment

    def confirm(self) -> dt.datetime:
        """Staff say the system clock is right: take it, however far it leapt. Returns it."""
        system = self.system_now()
        self._trusted = (system, self._monotonic())
        self.advance(system)
        return system

    @property
    def suspect(self) -> bool:
        return self.suspect_reason is not None

    @property
    def suspect_reason(self) -> str | None:
        system = self.system_now()
        if system < EARLIEST_PLAUSIBLE:
            return f"system clock {system:%Y-%m-%d %H:%M} is before {EARLIEST_PLAUSIBLE:%Y-%m-%d}"
        leap = self._leap(system)
        if leap is not None:
            return (f"system clock {system:%Y-%m-%d %H:%M} is {_span(leap)} ahead of the last trusted time "
                    f"{self._expected():%Y-%m-%d %H:%M}; tickets go on from the trusted time. Correct the "
                    "clock, or if it is right run `kiosk clock confirm`")
        if self.high_water is not None and system < self.high_water - TOLERANCE:
            return (f"system clock {system:%Y-%m-%d %H:%M} is behind the ledger's latest time "
                    f"{self.high_water.astimezone(self.tz):%Y-%m-%d %H:%M}")
        return None

    def _expected(self) -> dt.datetime:
        """The last good time carried forward by the monotonic clock, which no one can set."""
        moment, since = self._trusted
        return (moment + dt.timedelta(seconds=self._monotonic() - since)).astimezone(self.tz)

    def _leap(self, system: dt.datetime) -> dt.timedelta | None:
        if self._trusted[0] is None:
            return None
        leap = system - self._expected()
        return leap if leap > self.max_leap else None

    def _later(self, moment: dt.datetime) -> dt.datetime:
        if self.high_water is None or moment >= self.high_water:
            return moment
        return self.high_water.astimezone(self.tz)


def _span(delta: dt.timedelta) -> str:
    return f"{delta.days} days" if delta.days >= 2 else f"{delta.total_seconds() / 3600:.0f} hours"


def ledger_clock(config, ledger, system=time.time, monotonic=time.monotonic) -> SafeClock:
    """The clock of every writer and reader of the ledger: the kiosk, staff tools, the agent, the lobby."""
    return SafeClock(config.tz, ledger.high_water(), system=system, monotonic=monotonic,
                     max_leap=dt.timedelta(days=config.clock["max_leap_days"]))


def confirm_clock(clock: SafeClock, ledger) -> dict:
    """Staff vouch for the system clock: the clock takes it and the ledger records a ``clock_confirmed`` event."""
    was = clock.suspect_reason
    now = clock.confirm()
    data = {"now": now.isoformat(timespec="seconds"), "was": was}
    ledger.record_event("clock_confirmed", data, now)
    return data
