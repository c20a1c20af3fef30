"""The kiosk's state as others see it: counts per service, the next day with room.

Used by ``kiosk status``, the LEDs and the edge agent (through a read-only
ledger), so every reader computes "full" and "next free day" the same way.
"""

import datetime as dt

from kiosk import servicedays
from kiosk.config import Config


def service_status(config: Config, ledger, now: dt.datetime) -> list[dict]:
    days = servicedays.booking_days(config.calendar, now)
    return [_one(config, ledger, service, now.date(), days) for service in config.services]


def _one(config, ledger, service, today: dt.date, days: list[dt.date]) -> dict:
    taken = ledger.taken(service.code, today)
    quota = ledger.quota(service, today)
    next_free = next((d for d in days if ledger.taken(service.code, d) < ledger.quota(service, d)), None)
    return {
        "code": service.code,
        "name": service.name,
        "today": today.isoformat(),
        "taken_today": taken,
        "quota_today": quota,
        "remaining_today": max(quota - taken, 0) if days and days[0] == today else 0,
        "today_open": next_free == today,
        "next_free_day": next_free.isoformat() if next_free else None,
    }


def snapshot(config: Config, ledger, clock, printer: str) -> dict:
    """Everything a technician asks first: counts, next free days, printer, clock, prints owed."""
    now = clock.now()
    recorded = ledger.state()
    return {
        "kiosk_id": config.id, "office_id": config.office_id, "now": now.isoformat(timespec="seconds"),
        "services": service_status(config, ledger, now),
        "printer": printer,
        "clock": {"suspect": clock.suspect, "reason": clock.suspect_reason},
        "owed_prints": [f"{t.label} {t.service_day}" for t in ledger.owed_prints(now.date())],
        "unconfirmed_prints": recorded.get("unconfirmed_prints", []),
        "buttons": recorded.get("buttons"),  # only sources that can lose their link report
    }
