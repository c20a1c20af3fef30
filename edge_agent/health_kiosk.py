"""The kiosk's part of the health payload, read from its ledger, read-only.

Same numbers as ``kiosk status`` (kiosk.state.snapshot), so a technician on
the phone and the dashboard never disagree. The ledger is opened and closed
on every collection: a reader in WAL mode never blocks the kiosk, and one
that is not kept open cannot hold back checkpoints and let the WAL grow.
"""

import os
import sqlite3
import time

from edge_agent.health_sources import Unavailable
from kiosk.clock import SafeClock
from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.ledger import Ledger
from kiosk.state import snapshot

LEDGER_FILE = "ledger.sqlite3"  # the name kiosk/app.py and kiosk/status.py give it in data_dir
PAPER_WARNING = "paper_near_end"


def kiosk_health(config: Config, now=time.time) -> dict:
    path = os.path.join(config.data_dir, LEDGER_FILE)
    if not os.path.exists(path):
        raise Unavailable(f"no ledger at {path} yet; has the kiosk run with data_dir = {config.data_dir!r}?")
    try:
        ledger = Ledger(path, config.office_id, config.tz, readonly=True)
    except KioskError as exc:
        raise Unavailable(str(exc)) from None
    try:
        printer = ledger.state().get("printer", "unknown")
        state = snapshot(config, ledger, SafeClock(config.tz, ledger.high_water(), system=now), printer)
    except (sqlite3.Error, KioskError) as exc:
        raise Unavailable(f"cannot read ledger {path}: {exc}") from None
    finally:
        ledger.close()
    state["paper_warning"] = printer == PAPER_WARNING
    return state
