"""The envelope every JSON payload of the agent carries: who sent it, from which run, which message, when made.

Receivers dedupe by ``(boot_id, seq)``: the outbox re-sends after every
reconnect and after a restart, so a message may arrive more than once.
``seq`` is taken when the message is *made*, not when it is sent, so a
message that never left (a dropped sample, an answer lost with its
connection) shows as a gap, and ``at`` is the moment it was made, not the
moment it reached the broker. ``historical: true`` is added at send time to
a message that was made while no connection was up and so waited in the
outbox; the same fact travels as the MQTT v5 user property
``historical=1`` for receivers that do not parse the body. No message
expiry is ever set: a day-old outage report is still worth having.
"""

import datetime as dt
import itertools
import secrets
import threading

from edge_agent import schema
from edge_agent.schema import ENVELOPE_KEYS, HISTORICAL_PROPERTY

__all__ = ["ENVELOPE_KEYS", "HISTORICAL_PROPERTY", "Envelope", "SystemClock", "encode", "mark_historical",
           "new_boot_id"]


def new_boot_id() -> str:
    """A random id for one run of the agent; 64 bits make a collision between runs negligible."""
    return secrets.token_hex(8)


class SystemClock:
    """The system clock with its UTC offset: what the agent stamps its messages with."""

    def now(self) -> dt.datetime:
        return dt.datetime.now().astimezone()


class Envelope:
    """Wraps bodies for one run of the agent. Thread-safe; ``seq`` starts at 1 for each boot_id."""

    def __init__(self, kiosk_id: str, office_id: str, clock=None, boot_id: str | None = None):
        for name, value in (("kiosk_id", kiosk_id), ("office_id", office_id)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        self.kiosk_id = kiosk_id
        self.office_id = office_id
        self.boot_id = boot_id or new_boot_id()
        self._clock = clock or SystemClock()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def wrap(self, body) -> dict:
        """Return a new dict: the envelope fields first, then ``body`` (a schema body or, for tools and
        tests, a dict). Takes the next seq."""
        fields = schema.body_fields(body)  # before the seq: a refused body leaves no gap
        at = self._clock.now()
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"the clock gave {at!r} without a UTC offset; give the clock a timezone")
        with self._lock:
            seq = next(self._seq)
        stamp = schema.Envelope(self.boot_id, seq, at.isoformat(timespec="milliseconds"), self.kiosk_id,
                                self.office_id)
        return schema.wire_dict(stamp, fields)


def mark_historical(message: dict) -> dict:
    """A copy of ``message`` that says it waited in the outbox for a connection."""
    return {**message, "historical": True}


def encode(message: dict) -> bytes:
    """Compact UTF-8 JSON, as every message goes out (edge_agent.schema.dump)."""
    return schema.dump(message)
