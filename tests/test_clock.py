"""SafeClock and the ledger's latest time in-process; the real kiosk process is in test_clock_faults.py
and test_clock_steps.py, the kiosk-level behaviour in test_kiosk.py."""

import datetime as dt

from support import JAKARTA, FakeSystemClock, at

from kiosk.clock import SafeClock, Verdict, confirm_clock, expire_confirmations, take_confirmations
from kiosk.config import Service


def test_runs_on_system_clock_when_it_is_ahead_of_the_ledger():
    system = FakeSystemClock(at("2026-11-23 09:00"))
    clock = SafeClock(JAKARTA, at("2026-11-23 08:00"), system=system)
    assert clock.now() == at("2026-11-23 09:00") and not clock.suspect


def test_behind_the_ledger_runs_on_ledger_time_and_is_suspect():
    system = FakeSystemClock(at("2026-11-20 06:00"))  # three days behind after a power cut
    clock = SafeClock(JAKARTA, at("2026-11-23 10:00"), system=system, monotonic=system.monotonic)
    assert clock.now() == at("2026-11-23 10:00")
    assert "behind the ledger's latest time 2026-11-23 10:00" in clock.suspect_reason
    system.advance(dt.timedelta(minutes=30))  # time passes by the monotonic clock: the day can roll
    assert clock.now() == at("2026-11-23 10:30") and clock.suspect


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

class Kernel:
    """The kernel's NTP state as adjtimex(2) reports it: the one thing here no test can set for real."""

    def __init__(self, synced=False):
        self.synced = synced

    def __call__(self):
        return self.synced


def clock_at(system, high_water, days=14, kernel=None, held=None):
    return SafeClock(JAKARTA, high_water, system=system, monotonic=system.monotonic,
                     max_leap=dt.timedelta(days=days), synced=kernel or Kernel(), held=held)


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
    clock = clock_at(system, at("2026-11-23 08:00"), kernel=Kernel(synced=True))
    assert clock.now() == at("2026-11-23 09:00")
    system.set(at("2027-11-23 09:00"))  # even a time server is not believed a year ahead
    system.advance(dt.timedelta(hours=1))
    assert clock.now() == at("2026-11-23 10:00") and clock.verdict == Verdict.LEAP


def test_at_start_a_step_within_the_limit_is_taken():
    system = FakeSystemClock(at("2026-12-01 08:00"))  # eleven days off for Lebaran, an RTC kept the date
    clock = clock_at(system, at("2026-11-20 16:55"))
    assert clock.now() == at("2026-12-01 08:00") and not clock.suspect


def test_a_ten_day_typo_while_running_is_held_until_corrected():
    system = FakeSystemClock(at("2026-12-03 08:00"))
    clock = clock_at(system, at("2026-12-02 16:00"))
    assert clock.now() == at("2026-12-03 08:00")
    system.set(at("2026-12-13 08:05"))  # `date -s` with a 1 for a 0, no network
    assert clock.now() == at("2026-12-03 08:00") and clock.verdict == Verdict.UNSYNCED_STEP
    assert "set 10 days ahead of the time the kiosk kept (2026-12-03 08:00)" in clock.suspect_reason
    assert "kiosk clock confirm" in clock.suspect_reason and clock.confirmable
    system.advance(dt.timedelta(minutes=10))
    system.set(at("2026-12-03 08:10"))  # corrected
    assert clock.now() == at("2026-12-03 08:10") and not clock.suspect


def test_a_step_back_while_running_is_held_too():
    system = FakeSystemClock(at("2026-12-03 08:00"))
    clock = clock_at(system, at("2026-12-02 16:00"))
    clock.now()
    system.set(at("2026-12-02 20:00"))  # still after the ledger, but yesterday: a served day
    assert clock.now() == at("2026-12-03 08:00") and clock.verdict == Verdict.UNSYNCED_STEP
    assert "set 12 hours behind the time the kiosk kept" in clock.suspect_reason


def test_an_ntp_catch_up_is_taken_without_staff():
    system = FakeSystemClock(at("2026-11-20 17:00"))  # booted Monday on Friday's saved time
    kernel = Kernel()
    clock = clock_at(system, at("2026-11-20 16:55"), kernel=kernel)
    assert clock.now() == at("2026-11-20 17:00")
    system.set(at("2026-11-23 07:30"))  # timesyncd steps the clock and clears STA_UNSYNC
    kernel.synced = True
    assert clock.now() == at("2026-11-23 07:30") and not clock.suspect


def test_a_small_hand_correction_is_taken():
    system = FakeSystemClock(at("2026-12-03 08:00"))
    clock = clock_at(system, at("2026-12-02 16:00"))
    clock.now()
    system.set(at("2026-12-03 09:30"))  # an RTC that drifted, put right by hand
    assert clock.now() == at("2026-12-03 09:30") and not clock.suspect


def test_a_jump_held_before_a_restart_is_still_held_after_it():
    system = FakeSystemClock(at("2026-12-13 08:30"))  # the typo is still there after a power cut
    clock = clock_at(system, at("2026-12-03 08:20"), held=Verdict.UNSYNCED_STEP)
    assert clock.now() == at("2026-12-03 08:20") and clock.verdict == Verdict.UNSYNCED_STEP
    system.set(at("2026-12-03 08:40"))
    assert clock.now() == at("2026-12-03 08:40") and not clock.suspect


def test_a_quiet_kiosk_running_for_weeks_is_not_a_leap():
    system = FakeSystemClock(at("2026-11-23 09:00"))
    clock = clock_at(system, at("2026-11-23 09:00"))
    for _ in range(30):
        system.advance(dt.timedelta(days=1))
    assert clock.now() == at("2026-12-23 09:00") and not clock.suspect


def test_a_corrected_leap_is_taken_again():
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


# ---------------------------------------------------------------- the ledger's latest time, confirmations

B = Service("B", "Kartu Keluarga", 150, None, None, ())


def test_staff_writes_never_move_the_ledgers_latest_time(ledger):
    ledger.issue_ticket(B, [dt.date(2026, 12, 3)], at("2026-12-03 08:00"))
    wrong = at("2026-12-14 08:00")  # a staff tool on a clock eleven days ahead
    ledger.set_quota(B, dt.date(2026, 12, 14), 20, wrong)
    ledger.request_reprint("B", dt.date(2026, 12, 3), 1, wrong)
    ledger.void("B", dt.date(2026, 12, 3), 1, wrong, "double")
    ledger.expire_request(ledger.add_request("clock_confirm", wrong), wrong)
    assert ledger.high_water() == at("2026-12-03 08:00")


def test_a_confirmation_with_nothing_held_changes_nothing(ledger):
    ledger.issue_ticket(B, [dt.date(2026, 12, 3)], at("2026-12-03 08:00"))
    system = FakeSystemClock(at("2026-12-03 09:00"))
    before = ledger.events_since(0)
    answer = confirm_clock(clock_at(system, ledger.high_water()), ledger)
    assert (answer["ok"], answer["outcome"]) == (False, "nothing_to_confirm")
    assert "nothing to confirm: the clock is not suspect" in answer["message"]
    assert ledger.events_since(0) == before and ledger.state() == {}


def test_a_confirmation_pending_at_the_start_is_expired_not_applied(ledger):
    ledger.issue_ticket(B, [dt.date(2026, 12, 3)], at("2026-12-03 08:00"))
    asked = at("2026-12-03 09:00")  # the kiosk was off; its asker was killed before it withdrew it
    late = ledger.add_request("clock_confirm", asked, deadline=asked + dt.timedelta(seconds=5))
    system = FakeSystemClock(at("2027-12-03 08:10"))  # a year ahead when the kiosk starts
    clock = clock_at(system, ledger.high_water())  # earlier than the deadline: not what decides
    expire_confirmations(clock, ledger)
    take_confirmations(clock, ledger)
    assert not ledger.request_pending(late) and clock.verdict == Verdict.LEAP
    assert ledger.request_result(late)["outcome"] == "expired"
    assert "clock_confirmed" not in [e["kind"] for e in ledger.events_since(0)]


def test_a_restart_within_one_boot_carries_the_kept_time_on(ledger):
    import time
    import types

    from kiosk.clock import clock_record, ledger_clock

    config = types.SimpleNamespace(tz=JAKARTA, clock={"max_leap_days": 14})
    system = FakeSystemClock(at("2026-12-03 08:00"))
    ledger.issue_ticket(B, [dt.date(2026, 12, 3)], at("2026-12-03 07:00"))
    kiosk = SafeClock(JAKARTA, ledger.high_water(), system=system, monotonic=time.monotonic, synced=Kernel())
    now = kiosk.now()
    ledger.set_state("clock", clock_record(kiosk, now), now)  # what the kiosk writes, with the kernel's monotonic
    system.set(at("2026-12-13 08:00"))  # set while the kiosk was stopped; the Pi did not reboot
    restarted = ledger_clock(config, ledger, system=system, synced=Kernel())
    assert now <= restarted.now() < now + dt.timedelta(seconds=5)  # the kept time, carried on
    assert restarted.verdict == Verdict.UNSYNCED_STEP
    rebooted = ledger_clock(config, ledger, system=system, monotonic=system.monotonic, synced=Kernel())
    assert rebooted.now() == at("2026-12-13 08:00") and not rebooted.suspect  # off for a time no clock measured


def test_a_date_confirmed_by_mistake_can_be_set_back_and_confirmed(ledger):
    system = FakeSystemClock(at("2026-12-03 08:00"))
    ledger.issue_ticket(B, [dt.date(2026, 12, 3)], at("2026-12-03 07:00"))
    clock = clock_at(system, ledger.high_water())
    clock.now()
    system.set(at("2026-12-13 08:00"))  # a typo, and staff confirm it without checking `date`
    assert confirm_clock(clock, ledger)["ok"]
    ledger.issue_ticket(B, [dt.date(2026, 12, 13)], clock.now())
    system.advance(dt.timedelta(minutes=5))
    system.set(at("2026-12-03 08:05"))  # corrected by hand: before the ledger's latest time
    assert clock.now() == at("2026-12-13 08:05") and clock.verdict == Verdict.STEP_BACK
    assert "set 10 days back from the time the kiosk kept" in clock.suspect_reason
    assert confirm_clock(clock, ledger)["ok"]
    assert clock.now() == at("2026-12-03 08:05") and not clock.suspect
    assert ledger.high_water() == at("2026-12-03 08:05"), "the typo's times still hold the kiosk"
    ledger.issue_ticket(B, [dt.date(2026, 12, 3)], clock.now())
    assert ledger.high_water() == at("2026-12-03 08:05")


def test_booted_behind_the_ledger_cannot_be_confirmed():
    system = FakeSystemClock(at("2026-11-20 06:00"))  # power cut, no network: days behind
    clock = clock_at(system, at("2026-11-23 10:00"))
    clock.now()
    system.advance(dt.timedelta(hours=3))
    assert clock.verdict == Verdict.BEHIND and not clock.confirmable


def test_a_confirmation_a_starting_kiosk_expired_is_answered_as_expired(ledger, monkeypatch):
    import types

    from kiosk.seam import RequestsClient

    system = FakeSystemClock(at("2027-12-03 08:00"))
    config = types.SimpleNamespace(tz=JAKARTA, clock={"max_leap_days": 14})

    def kiosk_starts_meanwhile(pending, timeout_s):  # the asker's wait, during which a kiosk starts
        expire_confirmations(clock_at(system, at("2026-12-03 08:00")), ledger)
        return not pending()

    monkeypatch.setattr("kiosk.seam.requests.wait_while", kiosk_starts_meanwhile)
    answer = RequestsClient(config, ledger, system=system).confirm_clock(5)
    assert (answer["ok"], answer["outcome"]) == (False, "expired") and "withdrawn" in answer["message"]


def test_a_step_back_held_before_a_reboot_can_still_be_confirmed_after_it():
    system = FakeSystemClock(at("2026-12-03 09:00"))  # corrected; the ledger holds a date confirmed by mistake
    clock = clock_at(system, at("2026-12-13 08:00"), held=Verdict.STEP_BACK)
    assert clock.now() == at("2026-12-13 08:00") and clock.verdict == Verdict.STEP_BACK and clock.confirmable
