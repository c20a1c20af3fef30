"""``kiosk status``: what a technician asks first, read without disturbing the kiosk."""

import os

from kiosk.clock import SafeClock
from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.ledger import Ledger
from kiosk.state import snapshot


def read_status(cfg: Config) -> dict:
    path = os.path.join(cfg.data_dir, "ledger.sqlite3")
    if not os.path.exists(path):
        raise KioskError(f"no ledger at {path}; has the kiosk run with data_dir = {cfg.data_dir!r}?")
    ledger = Ledger(path, cfg.office_id, cfg.tz, readonly=True)
    try:
        clock = SafeClock(cfg.tz, ledger.high_water())
        return snapshot(cfg, ledger, clock, ledger.state().get("printer", "unknown"))
    finally:
        ledger.close()


def format_status(status: dict) -> str:
    lines = [f"kiosk {status['kiosk_id']} at office {status['office_id']}, {status['now']}",
             f"{'service':<32} {'issued':>6} {'quota':>6} {'left':>6}  next day with room"]
    for s in status["services"]:
        name = f"{s['code']} {s['name']}"[:32]
        lines.append(f"{name:<32} {s['taken_today']:>6} {s['quota_today']:>6} {s['remaining_today']:>6}  "
                     f"{s['next_free_day'] or 'none within the booking horizon'}")
    lines.append(f"printer: {status['printer']}")
    clock = status["clock"]
    lines.append(f"clock: {'SUSPECT: ' + clock['reason'] if clock['suspect'] else 'ok'}")
    if status.get("buttons") and not status["buttons"]["connected"]:
        lines.append(f"button panel: DISCONNECTED ({status['buttons']['error']})")
    if status["owed_prints"]:
        lines.append(f"to print again when the printer is back: {', '.join(status['owed_prints'])}")
    if status["unconfirmed_prints"]:
        lines.append("print not confirmed before a restart (reprint if the citizen asks): "
                     + ", ".join(status["unconfirmed_prints"]))
    return "\n".join(lines)
