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
