"""``kiosk status``: what a technician asks first, read without disturbing the kiosk."""

import datetime as dt
import time

from kiosk.clock import ledger_clock
from kiosk.config import Config
from kiosk.ledger import open_existing
from kiosk.liveness import Liveness, Reading, read_liveness
from kiosk.seam.states import PrinterStatus
from kiosk.state import snapshot


def read_status(cfg: Config, system=time.time, liveness: Reading | None = None) -> dict:
    """The kiosk's state from its ledger, read-only, and whether the kiosk is alive to keep it current.

    Shared by ``kiosk status`` and the agent's health payload, so both say the same. ``system`` is
    the ledger's clock (tests set it); liveness is judged on the real one, as the heartbeat's mtime is.
    ``liveness`` is a reading the caller already took (the agent keeps a liveness.Watch)."""
    reading = liveness or read_liveness(cfg.data_dir, cfg.heartbeat_stale_s)
    ledger = open_existing(cfg)
    try:
        clock = ledger_clock(cfg, ledger, system=system)
        status = snapshot(cfg, ledger, clock, ledger.state().get("printer", PrinterStatus.UNKNOWN.value))
    finally:
        ledger.close()
    status["process"] = reading.to_dict(cfg.tz)
    # The ledger keeps the last printer state the kiosk saw; only a running kiosk keeps it current.
    status["printer_current"] = reading.state is Liveness.RUNNING
    return status


def format_status(status: dict) -> str:
    lines = [f"kiosk {status['kiosk_id']} at office {status['office_id']}, {status['now']}",
             _process_line(status["process"]),
             f"{'service':<32} {'issued':>6} {'quota':>6} {'left':>6}  next day with room"]
    for s in status["services"]:
        name = f"{s['code']} {s['name']}"[:32]
        lines.append(f"{name:<32} {s['taken_today']:>6} {s['quota_today']:>6} {s['remaining_today']:>6}  "
                     f"{s['next_free_day'] or 'none within the booking horizon'}")
    lines.append(_printer_line(status))
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


def _process_line(process: dict) -> str:
    state = process["state"]
    if state == Liveness.RUNNING.value:
        return f"kiosk: running ({process['detail']})"
    if state == Liveness.HUNG.value:
        return f"kiosk: HUNG: {process['detail']}"
    last = f"; last heartbeat {_clock_time(process['heartbeat_at'])}" if process["heartbeat_at"] else ""
    return f"kiosk: NOT RUNNING: {process['detail']}{last}"


def _printer_line(status: dict) -> str:
    if status["printer_current"]:
        return f"printer: {status['printer']}"
    at = status["process"]["heartbeat_at"]
    when = f" at {_clock_time(at)}" if at else ""
    why = "is hung" if status["process"]["state"] == Liveness.HUNG.value else "is not running"
    return f"printer: {status['printer']} (last known{when}; not current: the kiosk {why})"


def _clock_time(iso: str) -> str:
    moment = dt.datetime.fromisoformat(iso)
    return f"{moment:%Y-%m-%d %H:%M:%S}"
