"""The writes a reader of the kiosk may make, and the round trips to the running kiosk.

Only the running kiosk prints, so staff and the agent do not print: they leave the kiosk a row in
the ledger's ``requests`` table, and it answers, at its next look (every second or so), with a
``request_done`` event. This client is the one way to do that; it also sets quotas, the other
write readers make. Everything it writes is stamped with the kiosk's own clock read from the ledger
(``ledger_clock``), so a system clock leapt ahead cannot move the ledger's time.
"""

import datetime as dt
import time

from kiosk.clock import SafeClock, ask_running_kiosk, ledger_clock
from kiosk.config import Config, Service
from kiosk.ledger import Ledger, open_existing, wait_while
from kiosk.seam.states import RequestKind
from kiosk.ticket import Ticket


class RequestsClient:
    """A staff tool's or the agent's handle on the ledger: quota changes and requests to the kiosk."""

    def __init__(self, config: Config, ledger: Ledger, system=time.time):
        self.config = config
        self._ledger = ledger
        self._system = system

    def clock(self) -> SafeClock:
        """The kiosk's clock, read afresh from the ledger (the kiosk may have moved it since)."""
        return ledger_clock(self.config, self._ledger, system=self._system)

    def now(self) -> dt.datetime:
        return self.clock().now()

    def set_quota(self, service: Service, day: dt.date, quota: int, at: dt.datetime | None = None) -> int:
        """Set ``day``'s quota for ``service`` (never below what is taken: QuotaError); what is taken.

        ``at``: the kiosk's time the caller judged the change on (default: now)."""
        return self._ledger.set_quota(service, day, quota, at or self.now())

    def quota(self, service: Service, day: dt.date) -> int:
        return self._ledger.quota(service, day)

    def reprint(self, code: str, day: dt.date, number: int, wait_s: float) -> tuple[Ticket, bool]:
        """Ask the running kiosk to print a ticket again, and wait up to ``wait_s`` for it; the
        ticket and whether it printed. Not printed in time, the request stays: the kiosk prints it
        as soon as its printer is ready."""
        ticket = self._ledger.request_reprint(code, day, number, self.now())
        return ticket, wait_while(lambda: self._ledger.reprint_pending(ticket.id), wait_s)

    def test_print(self, wait_s: float) -> dict | None:
        """Ask the running kiosk for a test slip; its answer (the ``request_done`` event's JSON), or
        None when it did not print within ``wait_s`` (the request stays queued and prints when it can)."""
        request = self._ledger.add_request(RequestKind.TEST_PRINT, self.now())
        if not wait_while(lambda: self._ledger.request_pending(request), wait_s):
            return None
        return self._ledger.request_result(request) or {"request_id": request, "ok": True}

    def confirm_clock(self, wait_s: float) -> dict:
        """Staff vouch for the system clock through the running kiosk: its answer, with ``outcome``
        a ClockOutcome value. Never left queued: unanswered within ``wait_s`` it is withdrawn
        (``outcome`` "expired"), as a confirmation is about the clock now."""
        return ask_running_kiosk(self._ledger, self.clock(), wait_s)

    def close(self) -> None:
        self._ledger.close()

    def __enter__(self) -> "RequestsClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_requests(config: Config, system=time.time) -> RequestsClient:
    """The kiosk's ledger for the writes readers make; LedgerError when the kiosk has not run here."""
    return RequestsClient(config, open_existing(config, readonly=False), system=system)
