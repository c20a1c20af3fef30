"""What the lobby shows, as one JSON-ready dict: the body of ``/api/status`` (see docs/lobby.md).

Four sources, each allowed to be missing: the agent's ``network.json``
(stale after ``stale_after_s``), the kiosk's ledger (read-only), whether
the kiosk process runs (kiosk/liveness.py) and the agent's announcement. A
missing source is said plainly, never guessed. A kiosk that is not running
or hung issues nothing, so then no service promises a ticket.
"""

import datetime as dt
import enum
import os
import sqlite3

from edge_agent.seam import CauseCode, ServiceState, read_announcement, read_network
from kiosk.seam import KioskError, Liveness, Reading, read_liveness
from lobby import texts


class CardState(enum.StrEnum):
    """What a service's card says (``services[].state`` in ``/api/status``, the card's CSS class)."""
    AVAILABLE = "available"
    FULL = "full"  # today is full: the card names the next day with room
    UNKNOWN = "unknown"  # the counts cannot be read now
    STOPPED = "stopped"  # a network outage blocks the service
    MAINTENANCE = "maintenance"
    KIOSK_DOWN = "kiosk_down"  # the kiosk is not running or hung: no number can be taken

    @property
    def sends_to_kiosk(self) -> bool:
        """Whether the card sends a visitor to the kiosk for a ticket."""
        return self in (CardState.AVAILABLE, CardState.FULL, CardState.UNKNOWN)


def build_status(kiosk, lobby, now_s: float, ledger, liveness: Reading | None = None) -> dict:
    """``ledger``: a callable giving the ledger, read-only (opened at the first call: lobby.db.ledger);
    ``liveness``: a reading the caller took (the app keeps a liveness.Watch); else one look now."""
    tz = kiosk.tz
    now = dt.datetime.fromtimestamp(now_s, tz)
    network, written, problem = read_network(lobby.agent_data_dir)
    stale = problem is not None or now_s - written > lobby.stale_after_s
    verdict = network["verdict"] if network else {}
    targets = network.get("targets", {}) if network else {}
    announcement = _announcement(lobby.agent_data_dir, now)
    counts, counts_error = _counts(kiosk, ledger, now)
    machine = _machine(liveness or read_liveness(kiosk.data_dir, kiosk.heartbeat_stale_s))
    services = [_service(s, counts, verdict, targets, announcement, now) for s in kiosk.services]
    if machine["down"]:
        services = [_no_tickets(s) for s in services]
    return {
        "office": {"id": kiosk.office_id, "name": kiosk.office_name},
        "now": now.isoformat(timespec="seconds"), "time": f"{now:%H:%M}", "date": texts.day_id(now.date()),
        "date_en": texts.day_en(now.date()), "timezone": kiosk.timezone,
        "stale": stale, "data_as_of": _iso(written, tz), "data_as_of_time": _hhmm(written, now),
        "stale_reason": _stale_reason(problem, written, now, lobby.stale_after_s) if stale else None,
        "services": services,
        "counts_error": counts_error,
        "kiosk": machine,
        "outage": _outage(kiosk, verdict, targets, now),
        "nearest_offices": [dict(o) for o in lobby.nearest_offices],
        "announcement": announcement,
        "second_language": lobby.second_language,
    }


def _machine(reading: Reading) -> dict:
    down = reading.state is not Liveness.RUNNING
    return {"state": reading.state.value, "down": down, "detail": reading.detail,
            **(texts.kiosk_down() if down else {"text_id": None, "text_en": None})}


def _no_tickets(service: dict) -> dict:
    """A service card that no longer sends visitors to a kiosk that cannot issue."""
    if not service["state"].sends_to_kiosk:
        return service  # stopped or under maintenance: it promises nothing already
    return {**service, "state": CardState.KIOSK_DOWN, **texts.service_kiosk_down()}


def _counts(kiosk, ledger, now: dt.datetime) -> tuple[dict, str | None]:
    path = kiosk.ledger_path
    if not os.path.exists(path):
        return {}, f"ledger {path} does not exist yet: has the kiosk run?"
    try:
        return {s["code"]: s for s in ledger().service_status(now)}, None
    except (KioskError, sqlite3.Error) as exc:
        return {}, f"ledger {path} cannot be read: {exc}"


def _announcement(agent_dir: str, now: dt.datetime) -> dict | None:
    try:
        found = read_announcement(agent_dir)
    except sqlite3.Error:
        return None  # the agent is rewriting its store; the next poll reads it
    if not found or not found.get("text"):
        return None
    until = _parse(found.get("until"))
    if until is not None and until <= now:
        return None
    return {"text": str(found["text"]), "severity": str(found.get("severity", "info")),
            "until": until.isoformat() if until else None,
            "until_time": _hhmm(until.timestamp(), now) if until else None}


def _service(service, counts, verdict, targets, announcement, now) -> dict:
    net = next((s for s in verdict.get("services", []) if s.get("code") == service.code), {})
    count = counts.get(service.code)
    out = {"code": service.code, "name": service.name,
           "taken_today": count["taken_today"] if count else None,
           "quota_today": count["quota_today"] if count else None,
           "remaining": count["remaining_today"] if count else None,
           "next_free_day": count["next_free_day"] if count else None,
           "since": None, "until": None}
    blocked = net.get("blocked_by", [])
    if net.get("status") == ServiceState.STOPPED:
        since = _earliest(targets, blocked)
        out.update(state=CardState.STOPPED, since=_iso(since, now.tzinfo))
        out.update(texts.service_stopped(_hhmm(since, now)))
    elif net.get("status") == ServiceState.MAINTENANCE:
        until = _maintenance_until(targets, blocked, announcement)
        out.update(state=CardState.MAINTENANCE, until=_iso(until, now.tzinfo))
        out.update(texts.service_maintenance(_hhmm(until, now)))
    elif count is None:
        out.update(state=CardState.UNKNOWN, **texts.service_unknown())
    elif count["today_open"]:
        out.update(state=CardState.AVAILABLE, **texts.service_available(count["remaining_today"]))
    else:
        nxt = dt.date.fromisoformat(count["next_free_day"]) if count["next_free_day"] else None
        out.update(state=CardState.FULL, **texts.service_full(nxt))
    return out


def _outage(kiosk, verdict, targets, now) -> dict | None:
    stopped = [s for s in kiosk.services if s.code in verdict.get("stopped_services", [])]
    if not stopped:
        return None
    cause = verdict.get("cause") or {}
    since = _earliest(targets, cause.get("targets") or verdict.get("down", []))
    code = cause.get("code", CauseCode.OTHER)
    names = [s.name for s in stopped]
    return {"cause": code, "cause_detail": cause.get("text"), "since": _iso(since, now.tzinfo),
            "since_time": _hhmm(since, now), "services": [s.code for s in stopped],
            **texts.outage(names, _hhmm(since, now), code)}


def _earliest(targets: dict, names) -> float | None:
    times = [_parse(targets.get(n, {}).get("since")) for n in names]
    times = [t.timestamp() for t in times if t is not None]
    return min(times) if times else None


def _maintenance_until(targets: dict, names, announcement) -> float | None:
    times = [_parse(targets.get(n, {}).get("maintenance_until")) for n in names]
    times = [t.timestamp() for t in times if t is not None]
    if times:
        return max(times)
    until = _parse(announcement.get("until")) if announcement else None
    return until.timestamp() if until else None


def _stale_reason(problem, written, now, limit) -> str:
    if problem:
        return problem
    return f"network.json was last written at {_iso(written, now.tzinfo)}, more than {limit} s ago"


def _parse(text) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _iso(ts: float | None, tz) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def _hhmm(ts: float | None, now: dt.datetime) -> str | None:
    """``06:00`` today, ``06:00 (Senin, 23 November 2026)`` on another day, in office time."""
    if ts is None:
        return None
    moment = dt.datetime.fromtimestamp(ts, now.tzinfo)
    return f"{moment:%H:%M}" if moment.date() == now.date() else f"{moment:%H:%M} ({texts.day_id(moment.date())})"
