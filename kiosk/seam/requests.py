"""The writes a reader of the kiosk may make, and the round trips to the running kiosk.

Only the running kiosk prints, so staff and the agent do not print: they leave the kiosk a row in
the ledger's ``requests`` table, and it answers, at its next look (every second or so), with a
``request_done`` event. This client is the one way to do that; it also sets quotas, the other
write readers make. Everything it writes is stamped with the kiosk's own clock read from the ledger
(``ledger_clock``), so a system clock leapt ahead cannot move the ledger's time.
"""

import datetime as dt
import time

from kiosk.clock import SafeClock, ledger_clock
from kiosk.config import Config, Service
from kiosk.ledger import Ledger, open_existing
from kiosk.seam.reader import LedgerHandle
from kiosk.seam.states import ClockOutcome, RequestKind
from kiosk.ticket import Ticket


class RequestsClient(LedgerHandle):
    """A staff tool's or the agent's handle on the ledger: quota changes and requests to the kiosk."""

    def __init__(self, config: Config, ledger: Ledger, system=time.time):
        super().__init__(config, ledger)
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
        (``outcome`` "expired"), as a confirmation is about the clock now, not whenever the kiosk
        next looks."""
        clock = self.clock()
        now = clock.now()
        request = self._ledger.add_request(RequestKind.CLOCK_CONFIRM, now, deadline=now + dt.timedelta(seconds=wait_s))
        wait_while(lambda: self._ledger.request_pending(request), wait_s)
        withdrawn = self._ledger.expire_request(request, clock.now())
        answer = None if withdrawn else self._ledger.request_result(request)
        if answer is None or answer.get("outcome") == ClockOutcome.EXPIRED:  # also: expired by a kiosk starting
            return {"ok": False, "outcome": ClockOutcome.EXPIRED.value, "request_id": request,
                    "message": f"the kiosk did not answer within {wait_s:.0f} s; the confirmation was withdrawn "
                               "and will not be applied later. Is the kiosk running? Ask again when it is"}
        return answer


def wait_while(pending, timeout_s: float) -> bool:
    """Poll ``pending()`` until it is false (the running kiosk did what a request asked); False on timeout.

    The kiosk is another process and the ledger is all it shares with staff tools and the agent:
    there is no event to wait on, so this polls."""
    deadline = time.monotonic() + timeout_s
    while pending():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def open_requests(config: Config, system=time.time) -> RequestsClient:
    """The kiosk's ledger for the writes readers make; LedgerError when the kiosk has not run here."""
    return RequestsClient(config, open_existing(config, readonly=False), system=system)
