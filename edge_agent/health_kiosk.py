"""The kiosk's part of the health payload, read from its ledger, read-only, and its liveness.

It is exactly what ``kiosk status`` shows (kiosk.status.read_status), so a
technician on the phone and the dashboard never disagree. The ledger is
opened and closed on every collection: a reader in WAL mode never blocks the
kiosk, and one that is not kept open cannot hold back checkpoints.

The ledger alone cannot say whether the kiosk still runs (it keeps the last
printer state after a crash); ``KioskWatch`` asks kiosk/liveness.py every
second, so the agent reports ``kiosk_process`` as an event and in health.
"""

import sqlite3
import time

from edge_agent.health_sources import Unavailable
from kiosk.seam import (
    PROC_LOCKS,
    Config,
    KioskError,
    KioskEvent,
    Liveness,
    PrinterState,
    PrinterStatus,
    Reading,
    Watch,
    read_status,
)


class KioskWatch:
    """The agent's eye on the kiosk between health readings.

    ``poll`` (every second) judges liveness: a change is an event and a reason to
    publish health now. ``note`` sees every ledger event the agent follows: a
    printer fault is remembered as ``last_printer_fault``, so one that came and
    went between two readings still reaches health (and Home Assistant)."""

    def __init__(self, config: Config, clock=time.time, monotonic=time.monotonic, locks_path: str = PROC_LOCKS):
        self.config = config
        self._watch = Watch(config.data_dir, config.heartbeat_stale_s, clock, monotonic, locks_path)
        self._monotonic = monotonic
        self._born = monotonic()
        self.reading: Reading | None = None
        self._reported: Liveness | None = None  # the state the last event said
        self.last_printer_fault: dict | None = None
        self._news = False

    def poll(self) -> dict | None:
        """Look again; the ``kiosk_process`` event body when liveness changed, else None.

        A kiosk found running at the first look is no news. One found not running is,
        so an agent restarting next to a dead kiosk says so again, but only after
        ``heartbeat_stale_s``: at boot the agent may look before the kiosk has started."""
        previous, self.reading = self.reading, self._watch.read()
        state = self.reading.state
        if previous is None or previous.state is not state:
            self._news = True  # health shows every reading's state, event or not
        if state is self._reported:
            return None
        if self._reported is None and state is Liveness.RUNNING:
            self._reported = state
            return None
        if self._reported is None and self._monotonic() - self._born < self.config.heartbeat_stale_s:
            return None
        was, self._reported = self._reported, state
        return {**self.reading.to_dict(self.config.tz), "was": was.value if was else None,
                "fault": state is not Liveness.RUNNING}

    def note(self, event: KioskEvent) -> None:
        """One ledger event, as the agent relays it."""
        if not isinstance(event.payload, PrinterState):
            return
        at = event.at.isoformat()
        if event.payload.fault:
            self.last_printer_fault = {"status": event.payload.status.value, "at": at, "cleared_at": None}
        elif self.last_printer_fault and self.last_printer_fault["cleared_at"] is None:
            self.last_printer_fault = {**self.last_printer_fault, "cleared_at": at}
        self._news = True

    def take_news(self) -> bool:
        """Whether something health shows changed since the last call."""
        news, self._news = self._news, False
        return news

    def current(self) -> Reading:
        return self.reading if self.reading is not None else self._watch.read()


def kiosk_health(config: Config, now=time.time, watch: KioskWatch | None = None) -> dict:
    try:
        state = read_status(config, system=now, liveness=watch.current() if watch else None)
    except KioskError as exc:  # no ledger yet: the message says so
        raise Unavailable(str(exc)) from None
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot read ledger {config.ledger_path}: {exc}") from None
    state["paper_warning"] = state["printer"] == PrinterStatus.PAPER_NEAR_END
    state["last_printer_fault"] = watch.last_printer_fault if watch else None
    return state
