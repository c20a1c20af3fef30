"""The kiosk's event stream, typed: one ``EventKind`` and one frozen payload class per event.

The ledger's ``events`` table keeps each payload as a JSON object (``data``), and the agent relays
some of them over MQTT with the same keys. JSON is made and read only here, at that boundary:
``payload.to_json()`` gives the object exactly as it has always been written (keys sorted, as the
ledger stores them), and ``parse_payload`` reads one back. A kind this software does not know (a
newer kiosk's), or a payload it cannot read, becomes an ``UnknownEvent`` holding the raw object, so
a reader never crashes on what a later kiosk writes.
"""

import dataclasses
import datetime as dt
import enum
from typing import Any, ClassVar

from kiosk.seam.states import ClockOutcome, ClockVerdict, PrinterStatus, RequestKind


class EventKind(enum.StrEnum):
    """Every kind the kiosk and its staff tools write to the ledger's ``events.kind``."""
    TICKET_ISSUED = "ticket_issued"
    DAY_FULL = "day_full"  # the last number of a day's quota was taken
    HORIZON_FULL = "horizon_full"  # a press found every day within the booking horizon full
    PRINT_FAILED = "print_failed"
    BURST_ALARM = "burst_alarm"  # many tickets in a short time at one button
    PRINTER_STATE = "printer_state"
    CLOCK_SUSPECT = "clock_suspect"
    CLOCK_CONFIRMED = "clock_confirmed"
    BUTTONS_STATE = "buttons_state"  # a button source that can lose its link (the USB panel)
    REQUEST_DONE = "request_done"  # the running kiosk answered a request
    # Written by staff tools (the CLI, the agent, the lobby), on a clock that may be wrong:
    QUOTA_SET = "quota_set"
    TICKET_VOID = "ticket_void"
    REPRINT_REQUESTED = "reprint_requested"
    REQUEST_EXPIRED = "request_expired"  # a request withdrawn (or found stale) before it was done


# Stamped by a staff tool's clock: never counted in the ledger's latest time (Ledger.high_water).
STAFF_KINDS = frozenset({EventKind.QUOTA_SET, EventKind.TICKET_VOID, EventKind.REPRINT_REQUESTED,
                         EventKind.REQUEST_EXPIRED})


# The request's kind is "kind" in JSON; a field of that name would read as the event's kind.
AS_KIND = {"json": "kind"}


class EventPayload:
    """Base of the payloads: JSON in and out by field name. Dates travel as ISO text, enums as
    their value; the names in ``OMIT_IF_NONE`` are left out when None (they are written only
    by some of the answers one kind carries)."""
    KIND: ClassVar[EventKind]
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()

    @property
    def event_kind(self) -> EventKind:
        return self.KIND

    def to_json(self) -> dict[str, Any]:
        body = {_key(f): _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {k: body[k] for k in sorted(body) if not (k in self.OMIT_IF_NONE and body[k] is None)}

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        values = {}
        for field in dataclasses.fields(cls):
            if _key(field) in data:
                values[field.name] = _from_json(field.type, data[_key(field)])
            elif field.default is dataclasses.MISSING:
                raise ValueError(f"{cls.KIND.value} event without {_key(field)!r}: {data!r}")
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class TicketIssued(EventPayload):
    KIND = EventKind.TICKET_ISSUED
    service: str
    service_day: dt.date
    number: int
    quota: int


@dataclasses.dataclass(frozen=True)
class DayFull(EventPayload):
    KIND = EventKind.DAY_FULL
    service: str
    service_day: dt.date
    quota: int


@dataclasses.dataclass(frozen=True)
class HorizonFull(EventPayload):
    KIND = EventKind.HORIZON_FULL
    service: str
    last_day: dt.date | None  # the last day within the horizon; None when the horizon has no day


@dataclasses.dataclass(frozen=True)
class PrintFailed(EventPayload):
    KIND = EventKind.PRINT_FAILED
    ticket_id: int
    error: str


@dataclasses.dataclass(frozen=True)
class BurstAlarm(EventPayload):
    KIND = EventKind.BURST_ALARM
    service: str
    tickets: int
    window_s: float


@dataclasses.dataclass(frozen=True)
class PrinterState(EventPayload):
    KIND = EventKind.PRINTER_STATE
    status: PrinterStatus

    @property
    def fault(self) -> bool:
        return self.status.fault


@dataclasses.dataclass(frozen=True)
class ClockSuspect(EventPayload):
    KIND = EventKind.CLOCK_SUSPECT
    suspect: bool
    reason: str | None
    day: dt.date
    verdict: ClockVerdict


@dataclasses.dataclass(frozen=True)
class ClockConfirmed(EventPayload):
    KIND = EventKind.CLOCK_CONFIRMED
    now: str  # ISO time to the second, as confirmed
    was: str | None  # why the clock was suspect before


@dataclasses.dataclass(frozen=True)
class ButtonsState(EventPayload):
    KIND = EventKind.BUTTONS_STATE
    connected: bool
    error: str | None

    @property
    def fault(self) -> bool:
        return not self.connected


@dataclasses.dataclass(frozen=True)
class RequestDone(EventPayload):
    """The running kiosk's answer to a request; which fields it carries depends on ``kind``:
    a test print says ``printer`` or ``error``, a clock confirmation ``outcome``, ``now`` and
    ``was`` or ``message``."""
    KIND = EventKind.REQUEST_DONE
    OMIT_IF_NONE = frozenset({"error", "printer", "outcome", "now", "was", "message"})
    request_id: int
    request_kind: RequestKind = dataclasses.field(metadata=AS_KIND)
    ok: bool
    error: str | None = None
    printer: PrinterStatus | None = None
    outcome: ClockOutcome | None = None
    now: str | None = None
    was: str | None = None
    message: str | None = None


@dataclasses.dataclass(frozen=True)
class RequestExpired(EventPayload):
    KIND = EventKind.REQUEST_EXPIRED
    request_id: int
    request_kind: RequestKind = dataclasses.field(metadata=AS_KIND)
    ok: bool = False
    outcome: str = "expired"


@dataclasses.dataclass(frozen=True)
class QuotaSet(EventPayload):
    KIND = EventKind.QUOTA_SET
    service: str
    service_day: dt.date
    quota: int
    taken: int


@dataclasses.dataclass(frozen=True)
class TicketVoid(EventPayload):
    KIND = EventKind.TICKET_VOID
    ticket_id: int
    service: str
    service_day: dt.date
    number: int
    reason: str


@dataclasses.dataclass(frozen=True)
class ReprintRequested(EventPayload):
    KIND = EventKind.REPRINT_REQUESTED
    ticket_id: int
    service: str
    service_day: dt.date
    number: int


@dataclasses.dataclass(frozen=True)
class UnknownEvent:
    """A kind this software does not know, or a payload it cannot read: kept as written."""
    kind: str
    data: Any  # a JSON object, as every kiosk writes; whatever else a damaged row holds

    @property
    def event_kind(self) -> str:
        return self.kind

    def to_json(self) -> Any:
        return dict(self.data) if isinstance(self.data, dict) else self.data


PAYLOADS: dict[EventKind, type[EventPayload]] = {cls.KIND: cls for cls in (
    TicketIssued, DayFull, HorizonFull, PrintFailed, BurstAlarm, PrinterState, ClockSuspect, ClockConfirmed,
    ButtonsState, RequestDone, RequestExpired, QuotaSet, TicketVoid, ReprintRequested)}

Payload = EventPayload | UnknownEvent


@dataclasses.dataclass(frozen=True)
class KioskEvent:
    """One row of the ledger's ``events``: ``id`` is the reader's cursor, ``at`` the kiosk's time."""
    id: int
    at: dt.datetime
    payload: Payload

    @property
    def kind(self) -> str:
        """An ``EventKind`` member, or the raw text of an unknown kind."""
        return self.payload.event_kind

    def data(self) -> dict[str, Any]:
        """The payload as JSON, exactly as the ledger holds it."""
        return self.payload.to_json()


def parse_payload(kind: str, data: dict[str, Any]) -> Payload:
    """The typed payload of one event as read from JSON; never raises on what a reader cannot know."""
    try:
        cls = PAYLOADS[EventKind(kind)]
        return cls.from_json(data)
    except (ValueError, TypeError, KeyError):
        return UnknownEvent(kind, data)


def _to_json(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _from_json(annotation, value):
    """``value`` as the field's type: the types payloads use are few (see ``_PARSERS``)."""
    if value is None:
        return None
    for kind, parse in _PARSERS:
        if _admits(annotation, kind):
            return parse(value)
    if not isinstance(value, (str, int, float, bool)):
        raise TypeError(f"{value!r} is no JSON scalar")
    return value


def _key(field: dataclasses.Field) -> str:
    return field.metadata.get("json", field.name)


def _admits(annotation, kind) -> bool:
    return annotation is kind or kind in getattr(annotation, "__args__", ())


def _date(value) -> dt.date:
    return dt.date.fromisoformat(value)


_PARSERS = ((dt.date, _date), (PrinterStatus, PrinterStatus), (ClockVerdict, ClockVerdict),
            (ClockOutcome, ClockOutcome), (RequestKind, RequestKind))
