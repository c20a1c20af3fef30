"""What each MQTT command does. Payloads arrive validated (edge_agent/commands.py); a handler
either does all of its work or raises CommandError and changes nothing."""

import contextlib
import datetime as dt

from edge_agent.errors import AgentError, CommandError
from kiosk.clock import ledger_clock
from kiosk.errors import KioskError, LedgerError
from kiosk.ledger import open_existing, wait_while

KIOSK_ANSWER_WAIT_S = 15.0  # a kiosk looks at its requests every second; a slip takes well under 5 s


class Handlers:
    """Bound to the running agent: its store, network monitor and the kiosk's ledger."""

    def __init__(self, agent):
        self.agent = agent

    def table(self) -> dict:
        return {"announce": self.announce, "clear_announcement": self.clear_announcement,
                "test_print": self.test_print, "set_quota": self.set_quota, "resend": self.resend,
                "confirm_clock": self.confirm_clock}

    def announce(self, payload: dict) -> dict:
        names = payload.get("maintenance_targets", [])
        until = _epoch(payload.get("until"))
        if names and until is None:  # maintenance without an end would be no maintenance at all
            raise CommandError("bad_value", f"maintenance_targets {names} need \"until\": when the work ends, "
                                            "e.g. \"2026-12-01T15:00:00+07:00\"")
        if names:
            try:
                self.agent.set_maintenance(names, until, payload["text"])
            except AgentError as exc:
                raise CommandError("bad_value", str(exc)) from None
        announcement = {**payload, "announced_at": self.agent.now().isoformat(timespec="seconds")}
        self.agent.store.put("announcement", announcement)
        self.agent.publish_announcement()
        return {"announcement": announcement}

    def clear_announcement(self, payload: dict) -> dict:
        old = self.agent.store.get("announcement")
        if old and old.get("maintenance_targets"):
            self.agent.set_maintenance(old["maintenance_targets"], None, "cleared")
        self.agent.store.delete("announcement")
        self.agent.publish_announcement()
        return {"cleared": old is not None}

    def set_quota(self, payload: dict) -> dict:
        config = self.agent.kiosk
        try:
            service = config.service(payload["service"])
        except KeyError:
            codes = ", ".join(s.code for s in config.services)
            raise CommandError("bad_value", f"service {payload['service']!r} is not configured here; "
                                            f"use one of: {codes}") from None
        day = dt.date.fromisoformat(payload["date"])
        with self._ledger() as ledger:
            try:
                taken = ledger.set_quota(service, day, payload["quota"], self._now(ledger))
            except KioskError as exc:
                raise CommandError("bad_value", str(exc)) from None
        return {"service": service.code, "date": day.isoformat(), "quota": payload["quota"], "taken": taken}

    def test_print(self, payload: dict) -> dict:
        return self._through_kiosk("test_print", "did not print within {s} s: is it running, and is its "
                                   "printer ready? The request stays queued and prints when it can.")

    def confirm_clock(self, payload: dict) -> dict:
        return self._through_kiosk("clock_confirm", "did not answer within {s} s: is it running? The request "
                                   "stays queued; the kiosk takes it when it next runs.")

    def _through_kiosk(self, kind: str, late: str) -> dict:
        """Leave the running kiosk a request and wait for its answer in the ledger."""
        with self._ledger() as ledger:
            request = ledger.add_request(kind, self._now(ledger))
            if not wait_while(lambda: ledger.request_pending(request), KIOSK_ANSWER_WAIT_S):
                raise CommandError("kiosk_busy", "the kiosk " + late.format(s=f"{KIOSK_ANSWER_WAIT_S:.0f}"))
            return ledger.request_result(request) or {"request_id": request, "ok": True}

    def _now(self, ledger) -> dt.datetime:
        """The kiosk's clock for what goes into its ledger: a system clock leapt ahead must not move it."""
        return ledger_clock(self.agent.kiosk, ledger, system=self.agent.clock).now()

    def resend(self, payload: dict) -> dict:
        self.agent.request_resend()
        return {"queued": True}

    def _ledger(self):
        try:
            return contextlib.closing(open_existing(self.agent.kiosk, readonly=False))
        except LedgerError as exc:
            raise CommandError("kiosk_missing", str(exc)) from None


def _epoch(text: str | None) -> float | None:
    return None if text is None else dt.datetime.fromisoformat(text).timestamp()
