"""A clock that never runs backwards past the ledger, nor takes a jump no one vouches for.

The Pi has no real-time clock: after a power cut with the network down it
boots with a stale time, possibly days behind. Issuing on that time would
print tickets for days already served, so the kiosk runs on the later of
the system clock and the latest time already in the ledger, and says the
clock is suspect while the system clock is behind.

A clock *ahead* is worse: tickets for a day no one will come, and the
ledger's time held there. So the clock keeps a **trusted time**, carried
forward by the monotonic clock (which no one can set), and judges every
reading of the system clock against it:

- more than ``max_leap`` ahead (a mistyped year, a bad RTC or time server):
  never taken without staff;
- while running (or after a restart that found a jump held), a step of more
  than ``MAX_UNSYNCED_STEP`` either way that the kernel does not report as
  NTP-synchronised: someone set the clock by hand, typo or not. Not taken
  until the clock is corrected or staff confirm it (``kiosk clock confirm``).
  An NTP catch-up after a weekend off is synchronised, so it is taken;
- the first reading after a start, when the kiosk was off for an unknown
  time (the Pi rebooted): anything up to ``max_leap`` ahead is taken. After
  a restart within one boot, the time the last run kept is carried on by
  the monotonic clock (the kernel's, the same for every process), so the
  rule above still holds.

Nothing of a jump not taken reaches the ledger: every writer stamps its
rows with this clock (``ledger_clock``), and staff writes do not count in
the ledger's latest time at all (``Ledger.high_water``).
"""

import ctypes
import datetime as dt
import functools
import logging
import time

from kiosk.seam.events import ClockConfirmed, RequestDone
from kiosk.seam.states import ClockOutcome as Outcome
from kiosk.seam.states import ClockVerdict as Verdict
from kiosk.seam.states import RequestKind

log = logging.getLogger("kiosk.clock")

# A system clock before this cannot be right: the software did not exist yet.
EARLIEST_PLAUSIBLE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
# Small backward steps (NTP slewing, a leap second) are not worth an alarm.
TOLERANCE = dt.timedelta(seconds=60)
# Longer than a Lebaran closure with the kiosk switched off; a mistyped year or month is caught.
DEFAULT_MAX_LEAP = dt.timedelta(days=14)
# A running kiosk knows the time to a few seconds a day. Hours, not minutes: a drifted clock put
# right by hand needs no confirmation, while local time typed as UTC (7 hours in WIB) is caught.
MAX_UNSYNCED_STEP = dt.timedelta(hours=2)

# A jump held, not taken: what a confirmation settles, and what a restart must not forget.
HELD = (Verdict.UNSYNCED_STEP, Verdict.STEP_BACK, Verdict.LEAP)


# ---------------------------------------------------------------- the kernel's NTP state

STA_UNSYNC = 0x0040
MAXERROR_LIMIT_US = 16_000_000  # what systemd's timedatectl counts as synchronised


class _Timex(ctypes.Structure):
    # The head of struct timex (adjtimex(2)); the kernel writes about 200 bytes, hence the tail.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("_rest", ctypes.c_byte * 512)]


def ntp_synced() -> bool:
    """Whether the kernel says a time server keeps the clock (what ``timedatectl`` shows as
    NTPSynchronized). Anything it cannot tell counts as not synchronised: the safe side."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return False
    timex = _Timex()
    if adjtimex(ctypes.byref(timex)) < 0:
        return False
    return not timex.status & STA_UNSYNC and timex.maxerror < MAXERROR_LIMIT_US


@functools.cache
def _adjtimex():
    try:
        return ctypes.CDLL(None, use_errno=True).adjtimex  # the global lookup: a preloaded one wins
    except (OSError, AttributeError):
        return None  # not Linux


# ---------------------------------------------------------------- the clock

class SafeClock:
    def __init__(self, tz, high_water: dt.datetime | None = None, system=time.time,
                 monotonic=time.monotonic, max_leap: dt.timedelta = DEFAULT_MAX_LEAP,
                 synced=ntp_synced, held: Verdict | None = None,
                 kept: tuple[dt.datetime, float, bool] | None = None):
        """``held``: the step the kiosk was holding when it last wrote (from the ledger); a restart
        does not launder it, so readings are judged as if the kiosk had kept running.
        ``kept``: the time a kiosk process of this boot kept, the monotonic reading then, and
        whether that time was read from the system clock (not the ledger's, while behind)."""
        self.tz = tz
        self._system = system
        self._monotonic = monotonic
        self._synced = synced
        self.max_leap = max_leap
        self.high_water = high_water
        self._trusted = (high_water, monotonic())  # the last good time, and when (monotonic) it was
        self._running = held in HELD  # judged a reading already: steps are measured from the trusted time
        # The trusted time was a system reading, not the ledger's latest time; a step back held
        # over a restart stays one (still confirmable), not a clock that merely booted behind.
        self._read = held is Verdict.STEP_BACK
        self.steps = 0  # steps of the system clock taken: the record of the kept time is rewritten
        if kept is not None and kept[1] <= self._trusted[1]:
            self._trusted, self._read, self._running = kept[:2], kept[2], True

    def system_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._system(), self.tz)

    def now(self) -> dt.datetime:
        """The time tickets are issued on, in the office timezone; never before the ledger's latest."""
        system = self.system_now()
        verdict = self._judge(system)
        self._running = True
        if verdict is Verdict.OK:
            expected = self._expected()
            if expected is not None and abs(system - expected) > TOLERANCE:
                self.steps += 1
            self._trusted, self._read = (system, self._monotonic()), True
            return self._later(system)
        return self._later(self._expected() or system)

    def advance(self, moment: dt.datetime) -> None:
        """Record that ``moment`` is now in the ledger; the clock will not go back before it."""
        if self.high_water is None or moment > self.high_water:
            self.high_water = moment

    def confirm(self) -> dt.datetime:
        """Staff say the system clock is right: take it, however far it stepped, back before the
        ledger's latest time too (the later times were the wrong ones). Returns it."""
        system = self.system_now()
        self._trusted, self._read, self._running = (system, self._monotonic()), True, True
        self.high_water = system  # the latest time now, also when it is earlier than the last one
        return system

    @property
    def kernel_monotonic(self) -> bool:
        """Whether this clock counts by the kernel's monotonic clock, which every process of a boot shares."""
        return self._monotonic is time.monotonic

    @property
    def verdict(self) -> Verdict:
        return self._judge(self.system_now())

    @property
    def suspect(self) -> bool:
        return self.verdict is not Verdict.OK

    @property
    def confirmable(self) -> bool:
        return self.verdict in HELD

    @property
    def suspect_reason(self) -> str | None:
        return self.report()[1]

    def report(self) -> tuple[Verdict, str | None]:
        """The verdict on the system clock now, and why it is suspect with the fix (None if not)."""
        system = self.system_now()
        verdict = self._judge(system)
        return verdict, self._reason(verdict, system)

    def _reason(self, verdict: Verdict, system: dt.datetime) -> str | None:
        if verdict is Verdict.OK:
            return None
        if verdict is Verdict.TOO_EARLY:
            return f"system clock {system:%Y-%m-%d %H:%M} is before {EARLIEST_PLAUSIBLE:%Y-%m-%d}"
        if verdict is Verdict.BEHIND:
            return (f"system clock {system:%Y-%m-%d %H:%M} is behind the ledger's latest time "
                    f"{self.high_water.astimezone(self.tz):%Y-%m-%d %H:%M}; tickets go on from the ledger's time "
                    "until a time server sets the clock, or staff set it (`date -s`, then `kiosk clock confirm` "
                    "if the kiosk asks)")
        expected = self._expected()
        step = system - expected
        fix = ("; tickets go on from the trusted time. Correct the clock, or if it is right run "
               "`kiosk clock confirm`")
        if verdict is Verdict.LEAP:
            return (f"system clock {system:%Y-%m-%d %H:%M} is {_span(step)} ahead of the last trusted time "
                    f"{expected:%Y-%m-%d %H:%M}{fix}")
        if verdict is Verdict.STEP_BACK:
            return (f"system clock {system:%Y-%m-%d %H:%M} was set {_span(-step)} back from the time the kiosk "
                    f"kept ({expected:%Y-%m-%d %H:%M}), behind the ledger's latest time "
                    f"{self.high_water.astimezone(self.tz):%Y-%m-%d %H:%M}; tickets go on from the kept time. "
                    "Correct the clock, or if it is right (the later date was wrong) run `kiosk clock confirm`")
        way = "ahead of" if step > dt.timedelta(0) else "behind"
        return (f"system clock {system:%Y-%m-%d %H:%M} was set {_span(abs(step))} {way} the time the kiosk "
                f"kept ({expected:%Y-%m-%d %H:%M}) and is not synchronised by a time server (NTP){fix}")

    def _judge(self, system: dt.datetime) -> Verdict:
        if system < EARLIEST_PLAUSIBLE:
            return Verdict.TOO_EARLY
        expected = self._expected()
        step = None if expected is None else system - expected
        if step is not None and step > self.max_leap:
            return Verdict.LEAP
        if self.high_water is not None and system < self.high_water - TOLERANCE:
            # Set back by hand while running, from a time read off this clock: a typo, or the
            # correction of a date confirmed by mistake. Booted behind, it is just behind.
            if self._read and self._running and step is not None and step < -MAX_UNSYNCED_STEP:
                return Verdict.STEP_BACK
            return Verdict.BEHIND
        # Asked only for a step, which is rare: the kernel call is cheap, but not needed every second.
        if step is not None and self._running and abs(step) > MAX_UNSYNCED_STEP and not self._synced():
            return Verdict.UNSYNCED_STEP
        return Verdict.OK

    def _expected(self) -> dt.datetime | None:
        """The last good time carried forward by the monotonic clock, which no one can set."""
        moment, since = self._trusted
        if moment is None:
            return None
        return (moment + dt.timedelta(seconds=self._monotonic() - since)).astimezone(self.tz)

    def _later(self, moment: dt.datetime) -> dt.datetime:
        if self.high_water is None or moment >= self.high_water:
            return moment
        return self.high_water.astimezone(self.tz)


def _span(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.0f} days" if hours >= 47.5 else f"{hours:.0f} hours"


def ledger_clock(config, ledger, system=time.time, monotonic=time.monotonic, synced=ntp_synced) -> SafeClock:
    """The clock of every writer and reader of the ledger: the kiosk, staff tools, the agent, the lobby."""
    recorded = ledger.state().get("clock") or {}
    return SafeClock(config.tz, ledger.high_water(), system=system, monotonic=monotonic, synced=synced,
                     max_leap=dt.timedelta(days=config.clock["max_leap_days"]),
                     held=_held(recorded), kept=_kept(recorded, monotonic))


def clock_record(clock: SafeClock, now: dt.datetime) -> dict:
    """The kiosk's clock as written in ``kiosk_state``: what readers show, and a restart resumes."""
    verdict, reason = clock.report()
    record = {"suspect": reason is not None, "reason": reason, "day": now.date().isoformat(),
              "verdict": verdict.value}
    boot = _boot_id()
    if clock.kernel_monotonic and boot is not None:
        record.update(boot_id=boot, kept_at=_iso(now), monotonic=time.monotonic(), kept_read=clock._read)
    return record


def _held(recorded: dict) -> Verdict | None:
    try:
        verdict = Verdict(recorded.get("verdict"))
    except ValueError:
        return None  # no record, or one from older software
    return verdict if verdict in HELD else None


def _kept(recorded: dict, monotonic) -> tuple[dt.datetime, float, bool] | None:
    """The time recorded by a process of this boot, to carry on by the monotonic clock; else None."""
    if monotonic is not time.monotonic or recorded.get("boot_id") is None or recorded["boot_id"] != _boot_id():
        return None
    try:
        return (dt.datetime.fromisoformat(recorded["kept_at"]), float(recorded["monotonic"]),
                recorded.get("kept_read") is True)
    except (KeyError, TypeError, ValueError):
        return None  # a record from older software, or damaged: judged as after a reboot


@functools.cache
def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None  # not Linux: every start counts as after a reboot


# ---------------------------------------------------------------- staff confirmations

def confirm_clock(clock: SafeClock, ledger) -> dict:
    """Staff vouch for the system clock. A held jump is taken and recorded (a ``clock_confirmed``
    event and the clock record, in one transaction); anything else is answered and changes nothing."""
    if not clock.confirmable:
        now = clock.now()
        why = f"the clock is suspect for another reason: {clock.suspect_reason}" if clock.suspect else \
            "the clock is not suspect"
        return {"ok": False, "outcome": Outcome.NOTHING_TO_CONFIRM, "now": _iso(now),
                "message": f"nothing to confirm: {why}; the kiosk runs on {now:%Y-%m-%d %H:%M} and nothing "
                           "was changed"}
    verdict, was = clock.report()
    now = clock.confirm()
    event = ClockConfirmed(now=_iso(now), was=was)
    if verdict is Verdict.STEP_BACK:  # the ledger's later times were wrong: they no longer count
        ledger.set_latest_time(now, clock_record(clock, now), event)
    else:
        ledger.set_state("clock", clock_record(clock, now), now, event)
    return {"ok": True, "outcome": Outcome.CONFIRMED, "now": event.now, "was": event.was}


def expire_confirmations(clock: SafeClock, ledger) -> None:
    """At the kiosk's start: every confirmation still pending was asked while no kiosk ran to answer
    it (its asker gave up, or was killed before it could withdraw it). It vouched for the clock of
    then, not of now, so it expires unapplied. Not judged by its deadline: that is a time on a clock
    in question, and after a power cut the clock may read earlier than when it was asked."""
    for request in ledger.pending_requests(RequestKind.CLOCK_CONFIRM):
        if ledger.expire_request(request.id, clock.now()):
            log.warning("clock confirmation from before the start expired, not applied",
                        extra={"request_id": request.id, "requested_at": _iso(request.requested_at)})


def take_confirmations(clock: SafeClock, ledger) -> None:
    """The running kiosk answers, at its next look, the confirmations staff or the agent left it."""
    for request in ledger.pending_requests(RequestKind.CLOCK_CONFIRM):
        result = confirm_clock(clock, ledger)
        ledger.request_done(RequestDone(request.id, RequestKind.CLOCK_CONFIRM, **result), clock.now())
        log.warning("clock confirmation from staff", extra={"outcome": result["outcome"], "now": result["now"]})


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")
