"""SafeClock alone; the kiosk-level behaviour (behind and ahead) is in test_kiosk.py."""

import datetime as dt

from conftest import JAKARTA, FakeSystemClock, at

from kiosk.clock import SafeClock


def test_runs_on_system_clock_when_it_is_ahead_of_the_ledger():
    system = FakeSystemClock(at("2026-11-23 09:00"))
    clock = SafeClock(JAKARTA, at("2026-11-23 08:00"), system=system)
    assert clock.now() == at("2026-11-23 09:00") and not clock.suspect


def test_behind_the_ledger_runs_on_ledger_time_and_is_suspect():
    system = FakeSystemClock(at("2026-11-20 06:00"))  # three days behind after a power cut
    clock = SafeClock(JAKARTA, at("2026-11-23 10:00"), system=system)
    assert clock.now() == at("2026-11-23 10:00")
    assert "behind the ledger's latest time 2026-11-23 10:00" in clock.suspect_reason


def test_small_backward_step_is_not_suspect():
    system = FakeSystemClock(at("2026-11-23 09:59:30"))
    clock = SafeClock(JAKARTA, at("2026-11-23 10:00"), system=system)
    assert not clock.suspect and clock.now() == at("2026-11-23 10:00")


def test_clock_before_the_software_existed_is_suspect():
    clock = SafeClock(JAKARTA, None, system=FakeSystemClock(at("1970-01-01 07:00")))
    assert "before 2026-01-01" in clock.suspect_reason


def test_advance_never_goes_back():
    clock = SafeClock(JAKARTA, None, system=FakeSystemClock(at("2026-11-23 09:00")))
    clock.advance(at("2026-11-23 10:00"))
    clock.advance(at("2026-11-23 08:00"))
    assert clock.high_water == at("2026-11-23 10:00")


def test_recovers_when_system_clock_catches_up():
    system = FakeSystemClock(at("2026-11-20 06:00"))
    clock = SafeClock(JAKARTA, at("2026-11-23 10:00"), system=system)
    system.set(at("2026-11-23 10:05"))  # NTP came back
    assert not clock.suspect and clock.now() == at("2026-11-23 10:05")
    assert clock.now().tzinfo is JAKARTA and isinstance(clock.now(), dt.datetime)


# ---------------------------------------------------------------- leaps ahead

def clock_at(system, high_water, days=14):
    return SafeClock(JAKARTA, high_water, system=system, monotonic=system.monotonic,
                     max_leap=dt.timedelta(days=days))


def test_a_year_ahead_is_not_taken_and_says_how_to_fix_it():
    system = FakeSystemClock(at("2027-11-23 09:00"))  # a mistyped year, or a bad RTC
    clock = clock_at(system, at("2026-11-23 09:00"))
    assert clock.now() == at("2026-11-23 09:00")
    assert "365 days ahead of the last trusted time 2026-11-23 09:00" in clock.suspect_reason
    assert "kiosk clock confirm" in clock.suspect_reason
    system.advance(dt.timedelta(minutes=30))  # time still passes, by the clock no one can set
    assert clock.now() == at("2026-11-23 09:30")


def test_a_leap_while_running_keeps_time_by_the_monotonic_clock():
    system = FakeSystemClock(at("2026-11-23 09:00"))
    clock = clock_at(system, at("2026-11-23 08:00"))
    assert clock.now() == at("2026-11-23 09:00")
    system.set(at("2027-11-23 09:00"))
    system.advance(dt.timedelta(hours=1))
    assert clock.now() == at("2026-11-23 10:00") and clock.suspect


def test_a_step_within_the_limit_is_taken():
    system = FakeSystemClock(at("2026-11-20 17:00"))  # booted on the last saved time; NTP then steps it
    clock = clock_at(system, at("2026-11-20 16:55"))
    system.set(at("2026-12-01 08:00"))  # eleven days: a Lebaran closure with the kiosk off
    assert clock.now() == at("2026-12-01 08:00") and not clock.suspect


def test_a_quiet_kiosk_running_for_weeks_is_not_a_leap():
    system = FakeSystemClock(at("2026-11-23 09:00"))
    clock = clock_at(system, at("2026-11-23 09:00"))
    for _ in range(30):
        system.advance(dt.timedelta(days=1))
    assert clock.now() == at("2026-12-23 09:00") and not clock.suspect


def test_a_corrected_clock_is_taken_again():
    system = FakeSystemClock(at("2027-11-23 09:00"))
    clock = clock_at(system, at("2026-11-23 09:00"))
    assert clock.suspect
    system.set(at("2026-11-23 09:05"))
    assert clock.now() == at("2026-11-23 09:05") and not clock.suspect


def test_confirm_takes_the_leap_and_keeps_it():
    system = FakeSystemClock(at("2026-12-23 08:00"))  # an office closed a month, kiosk off
    clock = clock_at(system, at("2026-11-23 15:00"))
    assert clock.now() == at("2026-11-23 15:00")
    assert clock.confirm() == at("2026-12-23 08:00")
    assert clock.high_water == at("2026-12-23 08:00")
    system.advance(dt.timedelta(minutes=1))
    assert clock.now() == at("2026-12-23 08:01") and not clock.suspect


def test_the_limit_is_the_configured_one():
    system = FakeSystemClock(at("2026-11-26 09:00"))
    assert clock_at(system, at("2026-11-23 09:00"), days=2).suspect
    assert not clock_at(system, at("2026-11-23 09:00"), days=4).suspect
