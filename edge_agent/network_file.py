"""``network.json``: the agent's latest network state, handed to the lobby page through a file.

The agent's side of the file, since the agent writes it; the lobby reaches it only through
``edge_agent.seam``. The checks of untrusted text below serve the agent's store too (the announcement
the lobby shows), which is why they live here and not in the lobby.

The agent calls :func:`write_network` after every probe round with the
same body it publishes as the retained MQTT ``network`` state (``started``,
``ended``, ``targets``, ``verdict``). The write is atomic (``common.durable.write_atomic``:
a temporary file and ``os.replace``), so the lobby reads either the old body or the new, never
half of one. It is not fsynced: 8,640 rounds a day would wear the SD card,
and a file lost in a power cut is written again at the next round (until
then the page says its data is stale). The file's modification time is when the data was
current: a file older than ``stale_after_s`` means the agent stopped
writing, and the page says so.

The lobby trusts no file it reads: :func:`read_network` passes on only
fields of the right type, times every time zone can show and text that can
be sent as UTF-8. What it drops or repairs it logs once (the page polls
every second); the rest of the state is still shown.
"""

import datetime as dt
import json
import logging
import os
import re

from common.durable import write_atomic

log = logging.getLogger("lobby")  # what it reports, it reports for the page
NETWORK_FILE = "network.json"
# The instants every time zone can still show: one outside overflows datetime in the page's conversions.
FIRST_SHOWABLE = dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc)
LAST_SHOWABLE = dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # only JSON's \ud800 escapes make them; UTF-8 cannot carry them


def write_network(data_dir: str, body: dict) -> str:
    """Replace ``<data_dir>/network.json`` with ``body`` atomically; return its path."""
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, NETWORK_FILE)
    # Atomic but not flushed (see above); 0644 because the lobby may run as another user.
    write_atomic(path, json.dumps(body, sort_keys=True).encode(), mode=0o644, durable=False)
    return path


def read_network(data_dir: str) -> tuple[dict | None, float | None, str | None]:
    """``(body, written_at, problem)``: the body and its mtime (epoch s), or None and why not."""
    path = os.path.join(data_dir, NETWORK_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            written = os.fstat(f.fileno()).st_mtime
            body = json.load(f)
    except FileNotFoundError:
        return None, None, f"{path} does not exist yet: is the edge agent running?"
    except (OSError, ValueError) as exc:
        return None, None, f"{path} cannot be read ({exc}); the agent rewrites it after its next round"
    if not isinstance(body, dict) or not isinstance(body.get("verdict"), dict):
        return None, written, f"{path} has no verdict; it is not the agent's network state"
    problems: list[str] = []
    body = _checked_network(_scrubbed(body, problems), problems)
    for problem in problems:
        report_once(f"{path}: {problem}; the rest is shown, the agent rewrites the file after its next round")
    return body, written, None


def _checked_network(body: dict, problems: list) -> dict:
    verdict = dict(body["verdict"])
    services = _list_of(verdict, "verdict.services", dict, problems)
    verdict["services"] = [_checked_service(s, problems) for s in services if isinstance(s.get("code"), str)]
    if len(verdict["services"]) < len(services):
        problems.append("a verdict.services entry has no code; left out")
    for key in ("stopped_services", "down"):
        verdict[key] = _list_of(verdict, f"verdict.{key}", str, problems)
    cause = verdict.get("cause")
    if cause is not None and not isinstance(cause, dict):
        problems.append(f"verdict.cause = {_short(cause)} is not an object; left out")
        cause = None
    if cause is not None:
        cause = dict(cause, targets=_list_of(cause, "verdict.cause.targets", str, problems))
        for key, instead in (("code", "other"), ("text", None)):
            if cause.get(key) is not None and not isinstance(cause[key], str):
                problems.append(f"verdict.cause.{key} = {_short(cause[key])} is not a text; {instead} instead")
                cause[key] = instead
    verdict["cause"] = cause
    return dict(body, verdict=verdict, targets=_checked_targets(body.get("targets", {}), problems))


def _checked_service(service: dict, problems: list) -> dict:
    blocked = _list_of(service, f"service {service['code']} blocked_by", str, problems)
    status = service.get("status")
    if status is not None and not isinstance(status, str):
        problems.append(f"service {service['code']} status = {_short(status)} is not a text; left out")
        status = None
    return dict(service, status=status, blocked_by=blocked)


def _checked_targets(targets, problems: list) -> dict:
    if not isinstance(targets, dict):
        problems.append(f"targets = {_short(targets)} is not an object; left out")
        return {}
    out = {}
    for name, target in targets.items():
        if not isinstance(target, dict):
            problems.append(f"target {name!r} = {_short(target)} is not an object; left out")
            continue
        out[name] = dict(target)
        for key in ("since", "maintenance_until"):
            problem = time_problem(target.get(key)) if target.get(key) is not None else None
            if problem:
                problems.append(f"target {name!r} {key} = {_short(target[key])} {problem}; left out")
                out[name][key] = None
    return out


def _list_of(container: dict, name: str, kind: type, problems: list) -> list:
    key = name.rsplit(".", 1)[-1].rsplit(" ", 1)[-1]
    items = container.get(key, [])
    if not isinstance(items, list):
        problems.append(f"{name} = {_short(items)} is not a list; left out")
        return []
    kept = [item for item in items if isinstance(item, kind)]
    if len(kept) < len(items):
        problems.append(f"{name} = {_short(items)} holds items that are not {kind.__name__}; those are left out")
    return kept


def _scrubbed(value, problems: list):
    """``value`` with every lone surrogate in its texts and keys replaced by U+FFFD."""
    if isinstance(value, str):
        clean = LONE_SURROGATE.sub("\ufffd", value)
        if clean != value:
            problems.append(f"the text {_short(value)} holds lone surrogates; shown as U+FFFD")
        return clean
    if isinstance(value, list):
        return [_scrubbed(item, problems) for item in value]
    if isinstance(value, dict):
        return {_scrubbed(k, problems): _scrubbed(v, problems) for k, v in value.items()}
    return value


def time_problem(value) -> str | None:
    """Why ``value`` is not an ISO 8601 time with offset that the page can show; None when it is."""
    if not isinstance(value, str):
        return "is not a text"
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "is not an ISO 8601 time"
    if moment.tzinfo is None:
        return "has no UTC offset"
    try:
        showable = FIRST_SHOWABLE <= moment.astimezone(dt.timezone.utc) <= LAST_SHOWABLE
    except OverflowError:
        showable = False
    return None if showable else f"is not between {FIRST_SHOWABLE:%Y-%m-%d} and {LAST_SHOWABLE:%Y-%m-%d}"


def clean_text(text: str) -> str:
    return LONE_SURROGATE.sub("\ufffd", text)


def _short(value) -> str:
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


_reported: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first


def report_once(message: str) -> None:
    """The page polls every second: each problem is logged once, not at every poll."""
    if message in _reported:
        return
    log.warning("%s", message)
    _reported[message] = None
    if len(_reported) > 64:
        del _reported[next(iter(_reported))]
