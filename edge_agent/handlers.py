"""What each MQTT command does. Payloads arrive checked in form (edge_agent/commands.py); a handler
then checks them against this kiosk (its services, calendar, targets) into a value object, and only
then changes anything. So a handler either does all of its work or raises CommandError and changes
nothing."""

import datetime as dt
from dataclasses import dataclass

from edge_agent.errors import CommandError
from kiosk.seam import ClockOutcome, KioskError, LedgerError, Service, booking_days, is_service_day, open_requests

KIOSK_ANSWER_WAIT_S = 15.0  # a kiosk looks at its requests every second; a slip takes well under 5 s


@dataclass(frozen=True)
class Announcement:
    text: str
    severity: str
    until: dt.datetime | None
    maintenance_targets: tuple[str, ...]

    def stored(self, announced_at: dt.datetime) -> dict:
        """As the store keeps it and the lobby and MQTT show it."""
        body = {"text": self.text, "severity": self.severity}
        if self.until is not None:
            body["until"] = self.until.isoformat()
        if self.maintenance_targets:
            body["maintenance_targets"] = list(self.maintenance_targets)
        return {**body, "announced_at": announced_at.isoformat(timespec="seconds")}


@dataclass(frozen=True)
class QuotaChange:
    service: Service
    day: dt.date
    quota: int


class Handlers:
    """Bound to the running agent: its store, network monitor and the kiosk (through kiosk.seam's
    RequestsClient: the agent's only writes to the kiosk's ledger are a quota and requests)."""

    def __init__(self, agent):
        self.agent = agent

    def table(self) -> dict:
        return {"announce": self.announce, "clear_announcement": self.clear_announcement,
                "test_print": self.test_print, "set_quota": self.set_quota, "resend": self.resend,
                "confirm_clock": self.confirm_clock}

    def announce(self, payload: dict) -> dict:
        announcement = self._announcement(payload)
        if announcement.maintenance_targets:
            self.agent.set_maintenance(announcement.maintenance_targets, announcement.until.timestamp(),
                                       announcement.text)
        stored = announcement.stored(self.agent.now())
        self.agent.store.put("announcement", stored)
        self.agent.publish_announcement()
        return {"announcement": stored}

    def _announcement(self, payload: dict) -> Announcement:
        names = tuple(payload.get("maintenance_targets", ()))
        until = dt.datetime.fromisoformat(payload["until"]) if "until" in payload else None
        if names and until is None:  # maintenance without an end would be no maintenance at all
            raise CommandError("bad_value", f"maintenance_targets {list(names)} need \"until\": when the work "
                                            "ends, e.g. \"2026-12-01T15:00:00+07:00\"")
        known = {t.name for t in self.agent.monitor.targets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CommandError("bad_value", f"maintenance_targets {unknown} are no targets of this kiosk; "
                                            f"use its [[targets]] names: {', '.join(sorted(known)) or 'none'}")
        return Announcement(payload["text"], payload["severity"], until, names)

    def clear_announcement(self, payload: dict) -> dict:
        old, problems = self.agent.store.announcement()  # a broken one is cleared all the same
        if old and old.get("maintenance_targets"):
            known = {t.name for t in self.agent.monitor.targets}
            self.agent.set_maintenance([n for n in old["maintenance_targets"] if n in known], None, "cleared")
        self.agent.store.delete("announcement")
        self.agent.publish_announcement()
        return {"cleared": old is not None or bool(problems)}

    def set_quota(self, payload: dict) -> dict:
        with self._kiosk() as kiosk:
            now = kiosk.now()  # the kiosk's clock: a system clock leapt ahead must not move the ledger
            change = self._quota_change(payload, now)
            try:
                taken = kiosk.set_quota(change.service, change.day, change.quota, at=now)
            except KioskError as exc:
                raise CommandError("bad_value", str(exc)) from None
        return {"service": change.service.code, "date": change.day.isoformat(), "quota": change.quota,
                "taken": taken}

    def _quota_change(self, payload: dict, now: dt.datetime) -> QuotaChange:
        config = self.agent.kiosk
        try:
            service = config.service(payload["service"])
        except KeyError:
            codes = ", ".join(s.code for s in config.services)
            raise CommandError("bad_value", f"service {payload['service']!r} is not configured here; "
                                            f"use one of: {codes}") from None
        day = dt.date.fromisoformat(payload["date"])
        problem = _not_bookable(config.calendar, day, now)
        if problem:
            raise CommandError("bad_value", f"set_quota.date {day.isoformat()} {problem}")
        return QuotaChange(service, day, payload["quota"])

    def test_print(self, payload: dict) -> dict:
        with self._kiosk() as kiosk:
            answer = kiosk.test_print(KIOSK_ANSWER_WAIT_S)
        if answer is None:
            raise CommandError("kiosk_busy", f"the kiosk did not print within {KIOSK_ANSWER_WAIT_S:.0f} s: is it "
                                             "running, and is its printer ready? The request stays queued and "
                                             "prints when it can.")
        return answer

    def confirm_clock(self, payload: dict) -> dict:
        """Never left queued: a confirmation is about the clock now, not whenever the kiosk next runs."""
        with self._kiosk() as kiosk:
            answer = kiosk.confirm_clock(KIOSK_ANSWER_WAIT_S)
        if answer.get("outcome") == ClockOutcome.NOTHING_TO_CONFIRM:
            raise CommandError("nothing_to_confirm", answer["message"])
        if answer.get("outcome") == ClockOutcome.EXPIRED:
            raise CommandError("kiosk_busy", answer["message"])
        return answer

    def resend(self, payload: dict) -> dict:
        self.agent.request_resend()
        return {"queued": True}

    def _kiosk(self):
        try:
            return open_requests(self.agent.kiosk, system=self.agent.clock)
        except LedgerError as exc:
            raise CommandError("kiosk_missing", str(exc)) from None


def _not_bookable(calendar, day: dt.date, now: dt.datetime) -> str | None:
    """Why no ticket can be taken for ``day`` now (so its quota means nothing), or None."""
    days = booking_days(calendar, now)
    today = now.date()
    if day < today:
        return f"is in the past (today is {today.isoformat()}); give today or a later service day"
    if day in calendar.holidays:
        return "is a holiday in [calendar] holidays: the office does not serve that day"
    if not is_service_day(calendar, day):
        return (f"is a {day.strftime('%A')}, not one of the office's open weekdays: it does not serve "
                "that day")
    if day in days:
        return None
    if day == today:
        return (f"is today, but tickets for today ended at {calendar.last_ticket_at:%H:%M}; "
                "give a later service day")
    last = days[-1].isoformat() if days else "none"
    return (f"is beyond the booking horizon ({calendar.booking_horizon_days} service days, the last is "
            f"{last}); set it once the day comes within the horizon")
