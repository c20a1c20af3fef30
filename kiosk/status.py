"""``kiosk status``: what a technician asks first, read without disturbing the kiosk."""

import time

from kiosk.clock import ledger_clock
from kiosk.config import Config
from kiosk.ledger import open_existing
from kiosk.state import snapshot


def read_status(cfg: Config, system=time.time) -> dict:
    """The kiosk's state from its ledger, read-only; the printer as the kiosk last saw it.

    Shared by ``kiosk status`` and the agent's health payload, so both say the same."""
    ledger = open_existing(cfg)
    try:
        clock = ledger_clock(cfg, ledger, system=system)
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
