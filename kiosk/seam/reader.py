"""What the agent, the lobby and headquarters read of the kiosk's ledger, and nothing they could write.

Opened read-only (SQLite ``mode=ro``): a reader in WAL mode never blocks the kiosk, and cannot
change the ledger even by mistake. Each query is its own read transaction, so the agent's event
follower may keep one open; the lobby opens one per request and closes it at teardown.
"""

import datetime as dt
import time

from kiosk.clock import SafeClock, ledger_clock
from kiosk.config import Config, Service
from kiosk.ledger import Ledger, open_existing
from kiosk.seam.events import KioskEvent
from kiosk.state import service_status
from kiosk.ticket import Ticket


class LedgerHandle:
    """The kiosk's ledger held for a reader or an asker; closed with it (``with`` closes it too)."""

    def __init__(self, config: Config, ledger: Ledger):
        self.config = config
        self._ledger = ledger

    def close(self) -> None:
        self._ledger.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LedgerReader(LedgerHandle):
    """The kiosk's ledger as its readers see it: counts, tickets, events after a cursor, state."""

    # ------------------------------------------------------------ counts and tickets

    def quota(self, service: Service, day: dt.date) -> int:
        return self._ledger.quota(service, day)

    def taken(self, code: str, day: dt.date) -> int:
        """Numbers handed out that day (a void ticket keeps its number and its place)."""
        return self._ledger.taken(code, day)

    def find(self, code: str, day: dt.date, number: int) -> Ticket:
        """One ticket (``/verify``); raises TicketNotFound naming what was asked."""
        return self._ledger.find(code, day, number)

    def service_status(self, now: dt.datetime) -> list[dict]:
        """Counts per service and the next day with room, as ``kiosk status`` shows them."""
        return service_status(self.config, self._ledger, now)

    # ------------------------------------------------------------ events and state

    def events_since(self, cursor: int = 0, limit: int = 100) -> list[KioskEvent]:
        """Events after ``cursor`` (an event id), oldest first; unknown kinds come as UnknownEvent."""
        return self._ledger.events(cursor, limit)

    def last_event_id(self) -> int:
        return self._ledger.last_event_id()

    def state(self) -> dict:
        """The kiosk's recorded state (``kiosk_state``): printer, clock, buttons, unconfirmed prints."""
        return self._ledger.state()

    def high_water(self) -> dt.datetime | None:
        """The latest moment the kiosk recorded: the kiosk's clock never runs before it."""
        return self._ledger.high_water()

    def clock(self, system=time.time) -> SafeClock:
        """The kiosk's clock as this ledger tells it: what a reader stamps "now" with."""
        return ledger_clock(self.config, self._ledger, system=system)


def open_reader(config: Config) -> LedgerReader:
    """The kiosk's ledger, read-only; LedgerError when the kiosk has not run here yet (no ledger)."""
    return LedgerReader(config, open_existing(config, readonly=True))
