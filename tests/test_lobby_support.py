"""Helpers for the lobby tests (no tests here): config with [lobby], ledger with tickets, network.json."""

import datetime as dt
import os

from support import JAKARTA, at

from edge_agent.seam import write_network
from kiosk.ledger import Ledger
from kiosk.signing import load_or_create_key, ticket_payload

NOW = at("2026-11-23 09:00")  # a Monday, office open
LOBBY_TOML = """
[lobby]
stale_after_s = 30
second_language = true
staff_password_hash = "{hash}"
[[lobby.nearest_offices]]
name = "Disdukcapil Kabupaten Serang"
address = "Jl. Veteran No. 1, Serang"
"""


def lobby_config(make_config, password_hash: str = ""):
    return make_config(LOBBY_TOML.format(hash=password_hash))


def seed_ledger(kiosk, tickets: int = 2) -> list[str]:
    """Issue ``tickets`` tickets of service A today; return their QR payloads."""
    ledger = Ledger(os.path.join(kiosk.data_dir, "ledger.sqlite3"), kiosk.office_id, JAKARTA)
    key = load_or_create_key(kiosk.data_dir)
    payloads = []
    try:
        for _ in range(tickets):
            t = ledger.issue_ticket(kiosk.service("A"), [NOW.date()], NOW)
            payloads.append(ticket_payload(key, kiosk.office_id, kiosk.id, "A", t.service_day, t.number))
    finally:
        ledger.close()
    return payloads


def iso_z(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


OUTAGE_START = NOW.replace(hour=6)


def network_body(outage: bool, since: dt.datetime = OUTAGE_START) -> dict:
    """The agent's network state: central-ktp down since ``since`` (service A stopped), or all up."""
    state = "down" if outage else "up"
    targets = {"gateway": {"state": "up", "since": iso_z(since), "role": "gateway", "maintenance_until": None},
               "central-ktp": {"state": state, "since": iso_z(since), "role": "central", "maintenance_until": None}}
    cause = {"code": "central", "text": "central network", "targets": ["central-ktp"]} if outage else None
    services = [{"code": "A", "name": "Perekaman e-KTP", "status": "stopped" if outage else "running",
                 "blocked_by": ["central-ktp"] if outage else [], "degraded_by": []},
                {"code": "B", "name": "Kartu Keluarga", "status": "running", "blocked_by": [], "degraded_by": []}]
    return {"started": iso_z(NOW), "ended": iso_z(NOW), "transitions": [], "targets": targets,
            "verdict": {"status": "outage" if outage else "ok", "cause": cause,
                        "down": ["central-ktp"] if outage else [], "degraded": [], "maintenance": [],
                        "unknown": [], "services": services, "stopped_services": ["A"] if outage else []}}


def put_network(agent_dir: str, outage: bool, written_at: float | None = None) -> None:
    path = write_network(agent_dir, network_body(outage))
    if written_at is not None:
        os.utime(path, (written_at, written_at))
