"""The kiosk's ledger events that technicians must hear about, as MQTT event kinds.

The kiosk records everything in its ledger; the agent follows with a cursor
and relays the few kinds that matter off-site. Each relayed event keeps the
kiosk's own time and event id, so a receiver can tell a late relay from a
new fault and drop a duplicate after an agent crash.
"""

from kiosk.seam import (
    ButtonsState,
    DayFull,
    EventKind,
    EventPayload,
    HorizonFull,
    KioskEvent,
    LedgerError,
    Payload,
    PrinterState,
    UnknownEvent,
    open_reader,
)

BATCH = 200
# Relayed under their own kind, body as the ledger has it.
AS_THEY_ARE = (EventKind.BURST_ALARM, EventKind.CLOCK_SUSPECT, EventKind.CLOCK_CONFIRMED)


def relay_kind(event: KioskEvent) -> tuple[str, dict] | None:
    """The MQTT event (kind, body) for a kiosk ledger event, or None if it stays local.

    The body is the ledger's JSON for the event (the MQTT boundary) with the kiosk's id and time."""
    relayed = _relayed_as(event.payload)
    if relayed is None:
        return None
    kind, extra = relayed
    return kind, {**event.data(), "kiosk_event_id": event.id, "kiosk_at": event.at.isoformat(), **extra}


def _relayed_as(payload: Payload) -> tuple[str, dict] | None:
    """The MQTT kind of a payload and what its body adds; None for what stays local (and for what
    this agent cannot read, an UnknownEvent, except a printer state: that one is a fault)."""
    if isinstance(payload, PrinterState):
        return "printer_fault", {"fault": payload.fault}
    if isinstance(payload, UnknownEvent) and payload.kind == EventKind.PRINTER_STATE \
            and isinstance(payload.data, dict):
        # a status this agent cannot read (a newer kiosk's): the printer may not print, so it is news
        return "printer_fault", {"fault": True}
    if isinstance(payload, DayFull):
        return "quota_exhausted", {"scope": "day"}
    if isinstance(payload, HorizonFull):
        return "quota_exhausted", {"scope": "horizon"}
    if isinstance(payload, ButtonsState):
        return "button_panel", {"fault": payload.fault}
    if isinstance(payload, EventPayload) and payload.event_kind in AS_THEY_ARE:
        return str(payload.event_kind), {}
    return None


class KioskFollower:
    """Reads new kiosk events after a cursor kept in the agent's store; never writes the ledger."""

    def __init__(self, config, store):
        self.config, self.store = config, store
        self._ledger = None

    def new_events(self) -> list[KioskEvent]:
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
                self._ledger = open_reader(self.config)
            except LedgerError:
                return None  # the kiosk has not run yet; try again next time
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
