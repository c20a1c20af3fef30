"""Which days the office serves, and which day a ticket taken now is for."""

import datetime as dt

from kiosk.config import Calendar

# An office closed for longer than this has no next service day worth printing.
SEARCH_LIMIT_DAYS = 400


def is_service_day(calendar: Calendar, day: dt.date) -> bool:
    if day in calendar.extra_open_days:
        return True
    return day.weekday() in calendar.open_weekdays and day not in calendar.holidays


def first_day(calendar: Calendar, now: dt.datetime) -> dt.date:
    """Today if it is a service day and the last-ticket time has not passed, else the next one."""
    today = now.date()
    if is_service_day(calendar, today) and now.time() < calendar.last_ticket_at:
        return today
    return next_service_day(calendar, today)


def next_service_day(calendar: Calendar, after: dt.date) -> dt.date | None:
    day = after
    for _ in range(SEARCH_LIMIT_DAYS):
        day += dt.timedelta(days=1)
        if is_service_day(calendar, day):
            return day
    return None


def booking_days(calendar: Calendar, now: dt.datetime) -> list[dt.date]:
    """The service days a ticket taken at ``now`` may be for, earliest first (the booking horizon)."""
    days = []
    day = first_day(calendar, now)
    while day is not None and len(days) < calendar.booking_horizon_days:
        days.append(day)
        day = next_service_day(calendar, day)
    return days
