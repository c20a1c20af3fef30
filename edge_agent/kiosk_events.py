"""The kiosk's ledger events that technicians must hear about, as MQTT event kinds.

The kiosk records everything in its ledger; the agent follows with a cursor
and relays the few kinds that matter off-site. Each relayed event keeps the
kiosk's own time and event id, so a receiver can tell a late relay from a
new fault and drop a duplicate after an agent crash.
"""

from kiosk.errors import LedgerError
from kiosk.ledger import open_existing

BATCH = 200
PRINTER_OK = ("ok", "paper_near_end", "unknown")


def relay_kind(event: dict) -> tuple[str, dict] | None:
    """The MQTT event (kind, body) for a kiosk ledger event, or None if it stays local."""
    kind, data = event["kind"], event["data"]
    body = {**data, "kiosk_event_id": event["id"], "kiosk_at": event["at"]}
    if kind == "printer_state":
        return "printer_fault", {**body, "fault": data["status"] not in PRINTER_OK}
    if kind == "day_full":
        return "quota_exhausted", {**body, "scope": "day"}
    if kind == "horizon_full":
        return "quota_exhausted", {**body, "scope": "horizon"}
    if kind == "buttons_state":
        return "button_panel", {**body, "fault": not data["connected"]}
    if kind in ("burst_alarm", "clock_suspect", "clock_confirmed"):
        return kind, body
    return None


class KioskFollower:
    """Reads new kiosk events after a cursor kept in the agent's store; never writes the ledger."""

    def __init__(self, config, store):
        self.config, self.store = config, store
        self._ledger = None

    def new_events(self) -> list[dict]:
        ledger = self._open()
        if ledger is None:
            return []
        cursor = self.store.get("kiosk_event_cursor")
        if cursor is None:  # first start: history is not news
            cursor = ledger.last_event_id()
            self.store.put("kiosk_event_cursor", cursor)
        return ledger.events_since(cursor, BATCH)

    def done(self, event_id: int) -> None:
        """Everything up to ``event_id`` is relayed. Called once per batch: each call is an fsync."""
        self.store.put("kiosk_event_cursor", event_id)

    def _open(self):
        if self._ledger is None:
            try:
                self._ledger = open_existing(self.config)
            except LedgerError:
                return None  # the kiosk has not run yet; try again next time
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
