import dataclasses
import datetime as dt

from support import at

from kiosk import servicedays

FRI, SAT, MON = dt.date(2026, 11, 27), dt.date(2026, 11, 28), dt.date(2026, 11, 30)


def test_today_before_last_ticket_time(make_config):
    cal = make_config().calendar
    assert servicedays.first_day(cal, at("2026-11-27 06:00")) == FRI  # early arrivals get today
    assert servicedays.first_day(cal, at("2026-11-27 13:59")) == FRI


def test_after_last_ticket_time_goes_to_next_service_day(make_config):
    cal = make_config().calendar
    assert servicedays.first_day(cal, at("2026-11-27 14:00")) == MON  # skips the weekend


def test_closed_day_and_holiday(make_config):
    cal = make_config().calendar
    assert servicedays.first_day(cal, at("2026-11-28 09:00")) == MON
    assert servicedays.first_day(cal, at("2026-12-24 15:00")) == dt.date(2026, 12, 28)  # 25th is a holiday


def test_extra_open_day_wins(make_config):
    cal = dataclasses.replace(make_config().calendar, extra_open_days=frozenset({SAT}))
    assert servicedays.first_day(cal, at("2026-11-27 15:00")) == SAT


def test_booking_days_is_the_horizon(make_config):
    cal = make_config().calendar  # horizon 5
    days = servicedays.booking_days(cal, at("2026-11-27 09:00"))
    assert days == [FRI, MON, MON + dt.timedelta(1), MON + dt.timedelta(2), MON + dt.timedelta(3)]


def test_never_open_gives_no_days(make_config):
    cal = dataclasses.replace(make_config().calendar, open_weekdays=frozenset())
    assert servicedays.booking_days(cal, at("2026-11-27 09:00")) == []
