"""The kiosk's part of the health payload, read from its ledger, read-only.

It is exactly what ``kiosk status`` shows (kiosk.status.read_status), so a
technician on the phone and the dashboard never disagree. The ledger is
opened and closed on every collection: a reader in WAL mode never blocks the
kiosk, and one that is not kept open cannot hold back checkpoints.
"""

import sqlite3
import time

from edge_agent.health_sources import Unavailable
from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.status import read_status

PAPER_WARNING = "paper_near_end"


def kiosk_health(config: Config, now=time.time) -> dict:
    try:
        state = read_status(config, system=now)
    except KioskError as exc:  # no ledger yet: the message says so
        raise Unavailable(str(exc)) from None
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot read ledger {config.ledger_path}: {exc}") from None
    state["paper_warning"] = state["printer"] == PAPER_WARNING
    return state
