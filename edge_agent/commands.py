"""Commands from technicians: MQTT v5 request/response on ``<base>/cmd/<verb>``.

A request is a JSON object of at most 4096 bytes that says when it was
sent (``sent_at``). It is validated completely against the verb's schema
*before* its handler is called, so an invalid command changes nothing; a
request older than ``MAX_REQUEST_AGE_S`` by the kiosk's clock is refused
as ``stale`` (a command replayed by a bridge or queued for hours must not
run late). Every request gets exactly one answer:

    {"ok": true,  "verb": "set_quota", "result": {...}}
    {"ok": false, "verb": "set_quota", "error": {"code": "bad_value", "message": "..."}}

The MQTT link adds the envelope and sends the answer to the request's
ResponseTopic with its CorrelationData (see docs/mqtt.md). This module
knows nothing about MQTT: ``CommandDispatcher.handle(verb, payload)`` takes
the verb and the raw payload bytes and returns the answer.

Handlers are registered by the agent: ``{verb: callable(args) -> dict}``.
They get the validated arguments as a dict and return the result as a
JSON-serialisable dict, or raise ``CommandError(code, message)`` to refuse.
Commands must be safe to repeat: MQTT delivers at least once, and a
technician whose answer was lost asks again.
"""

import datetime as dt
import json
import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable

from edge_agent.errors import CommandError

log = logging.getLogger("edge_agent.commands")

MAX_PAYLOAD_BYTES = 4096
SEVERITIES = ("info", "warning", "critical")
MAX_TEXT_CHARS = 280
MAX_TARGETS = 32
MAX_TARGET_CHARS = 64
MAX_QUOTA = 10_000  # tickets a day for one service; more is a typo, and SQLite's integers end at 2**63
MAX_ANNOUNCE_DAYS = 31  # an announcement or maintenance window ends within a month
# A request is run only if its sent_at is at most this old (or this far ahead: the two clocks disagree).
MAX_REQUEST_AGE_S = 300
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SERVICE = re.compile(r"^[A-Z]$")
_TARGET = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # what edge_agent.config allows as a target name
# Unicode categories a lobby text never needs: controls, format marks (bidi overrides), lone surrogates
# (not encodable as UTF-8), private use.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co"})


# ------------------------------------------------------------------ value checks
# Each returns None when the (already type-checked) value is good, else what is wrong and how to fix it.

def _text(value: str) -> str | None:
    if not 1 <= len(value) <= MAX_TEXT_CHARS:
        return f"is {len(value)} characters long; give 1 to {MAX_TEXT_CHARS}"
    if not value.strip():
        return "is only blank space; write the announcement's words"
    for index, char in enumerate(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            return (f"holds the unprintable character U+{ord(char):04X} at position {index}; "
                    "send plain text on one line")
    return None


def _severity(value: str) -> str | None:
    return None if value in SEVERITIES else f"is not one of {', '.join(SEVERITIES)}"


def _datetime_with_offset(value: str) -> str | None:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return "is not an ISO 8601 date and time; write it like 2026-12-01T15:00:00+07:00"
    if moment.tzinfo is None:
        return "has no UTC offset; add one, e.g. 2026-12-01T15:00:00+07:00 for WIB"
    return None


def _targets(value: list) -> str | None:
    if len(value) > MAX_TARGETS:
        return f"has {len(value)} entries; give at most {MAX_TARGETS}"
    for item in value:
        if not 1 <= len(item) <= MAX_TARGET_CHARS:
            return f"entry {item!r} must be 1 to {MAX_TARGET_CHARS} characters"
        if not _TARGET.match(item):
            return f"entry {item!r:.70} is no target name; use the [[targets]] names, e.g. \"central-ktp\""
    if len(set(value)) != len(value):
        return "names a target twice; give each once"
    return None


def _service(value: str) -> str | None:
    return None if _SERVICE.match(value) else "must be one capital letter, the service code, e.g. \"A\""


def _date(value: str) -> str | None:
    if not _DATE.match(value):
        return "must be a date written YYYY-MM-DD, e.g. 2026-12-01"
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return "is not a real calendar date; check the month and day"
    return None


def _quota(value: int) -> str | None:
    return None if 0 <= value <= MAX_QUOTA else f"must be 0 to {MAX_QUOTA}"


@dataclass(frozen=True)
class Field:
    type: type
    required: bool
    check: Callable | None = None
    hint: str = ""  # what a good value looks like, for the "missing" message
    items: type | None = None  # element type of a list


SCHEMAS: dict[str, dict[str, Field]] = {
    "announce": {
        "text": Field(str, True, _text, f"1 to {MAX_TEXT_CHARS} characters"),
        "severity": Field(str, True, _severity, "info, warning or critical"),
        "until": Field(str, False, _datetime_with_offset, "e.g. 2026-12-01T15:00:00+07:00"),
        "maintenance_targets": Field(list, False, _targets, "a list of target names", items=str),
    },
    "clear_announcement": {},
    "test_print": {},
    "set_quota": {
        "service": Field(str, True, _service, "one capital letter, e.g. \"A\""),
        "date": Field(str, True, _date, "YYYY-MM-DD"),
        "quota": Field(int, True, _quota, f"an integer, 0 to {MAX_QUOTA}"),
    },
    "resend": {},
    "confirm_clock": {},
}
VERBS = tuple(SCHEMAS)
# Every request carries these besides its verb's own keys; handlers never see them.
COMMON = {"sent_at": Field(str, True, _datetime_with_offset, "when you sent it, e.g. 2026-12-01T09:00:00+07:00")}
_JSON_TYPES = {str: "a string", int: "an integer", list: "a list", bool: "true or false", dict: "an object"}


# ------------------------------------------------------------------ parsing and validation

def _no_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise CommandError("bad_json", f"key {key!r} appears twice; give each key once")
        seen[key] = value
    return seen


def _no_constants(name):
    raise CommandError("bad_json", f"{name} is not JSON; send a number or a string")


def parse(payload: bytes) -> dict:
    """The request payload as a dict, or CommandError (too_large, bad_json, not_an_object)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError("too_large", f"the request is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError("bad_json", f"the request is not UTF-8 ({exc}); send UTF-8 JSON") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise CommandError("bad_json", f"the request {shown!r} is not JSON ({exc}); "
                                       "send a JSON object, {} when there are no arguments") from None
    except RecursionError:  # 4096 bytes of "[[[[..." nest deeper than the parser goes
        raise CommandError("bad_json", "the request nests lists or objects hundreds deep; a request is one "
                                       "object of plain values and lists of strings") from None
    if not isinstance(value, dict):
        raise CommandError("not_an_object", f"the request is JSON {type(value).__name__} {value!r:.60}; "
                                            "send a JSON object, {} when there are no arguments")
    return value


def validate(verb: str, payload: bytes, now: dt.datetime | None = None) -> dict:
    """The verb's arguments, fully checked, or CommandError naming the first fault and its fix.

    ``now`` (aware; default the system clock) judges the request's age and an announcement's end.
    ``sent_at`` is checked and removed: handlers get only their verb's keys.
    """
    if verb not in SCHEMAS:
        raise CommandError("unknown_verb", f"verb {verb!r:.40} is unknown; this kiosk answers {', '.join(VERBS)}")
    now = now or dt.datetime.now(dt.timezone.utc)
    args = parse(payload)
    schema = {**SCHEMAS[verb], **COMMON}
    for key in args:
        if key not in schema:
            allowed = ", ".join(schema)
            raise CommandError("unknown_key", f"{verb} does not take {key!r:.40}; it takes {allowed}")
    for key, field in schema.items():
        if key not in args:
            if field.required:
                raise CommandError("bad_value", f"{verb} needs {key!r}; add it: {field.hint}")
            continue
        _check_field(verb, key, field, args[key])
    _check_age(verb, dt.datetime.fromisoformat(args.pop("sent_at")), now)
    if verb == "announce" and "until" in args:
        _check_until(dt.datetime.fromisoformat(args["until"]), now)
    return args


def _check_age(verb: str, sent_at: dt.datetime, now: dt.datetime) -> None:
    age = (now - sent_at).total_seconds()
    if abs(age) <= MAX_REQUEST_AGE_S:
        return
    when = f"{-age:.0f} s ahead of" if age < 0 else f"{age:.0f} s older than"
    raise CommandError("stale", f"{verb}.sent_at {sent_at.isoformat()} is {when} this kiosk's clock "
                                f"({now.isoformat(timespec='seconds')}); a request is run only within "
                                f"{MAX_REQUEST_AGE_S} s of being sent, so a replayed or long-queued one does "
                                "nothing. Send it again now; if the clocks disagree, check the kiosk's clock")


def _check_until(until: dt.datetime, now: dt.datetime) -> None:
    latest = now + dt.timedelta(days=MAX_ANNOUNCE_DAYS)
    if until <= now:
        raise CommandError("bad_value", f"announce.until {until.isoformat()} has already passed "
                                        f"(now {now.isoformat(timespec='seconds')}); give a later end")
    if until > latest:
        raise CommandError("bad_value", f"announce.until {until.isoformat()} is more than {MAX_ANNOUNCE_DAYS} "
                                        f"days ahead; give an end before {latest.isoformat(timespec='minutes')} "
                                        "and announce again when it comes")


def _check_field(verb: str, key: str, field: Field, value) -> None:
    if not _is(value, field.type):
        raise CommandError("bad_type", f"{verb}.{key} is {_json_type(value)} {value!r:.40}; "
                                       f"it must be {_JSON_TYPES[field.type]}")
    if field.items is not None:
        for item in value:
            if not _is(item, field.items):
                raise CommandError("bad_type", f"{verb}.{key} holds {_json_type(item)} {item!r:.40}; "
                                               f"every entry must be {_JSON_TYPES[field.items]}")
    problem = field.check(value) if field.check else None
    if problem:
        raise CommandError("bad_value", f"{verb}.{key} {value!r:.60} {problem}")


def _is(value, wanted: type) -> bool:
    # JSON true is a Python bool, which is also an int: quota=true must not pass as 1.
    if isinstance(value, bool) and wanted is not bool:
        return False
    return isinstance(value, wanted)


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction"
    return _JSON_TYPES.get(type(value), type(value).__name__)


# ------------------------------------------------------------------ dispatch

class CommandDispatcher:
    """Validates a request, calls its handler, and turns the outcome into the answer body."""

    def __init__(self, handlers: dict[str, Callable[[dict], dict]], clock: Callable[[], float] = time.time):
        for verb, handler in handlers.items():
            if verb not in SCHEMAS:
                raise ValueError(f"no schema for verb {verb!r}; known verbs are {', '.join(VERBS)} "
                                 "(add a schema to edge_agent/commands.py first)")
            if not callable(handler):
                raise TypeError(f"the handler for {verb!r} is {handler!r}, not a callable")
        self._handlers = dict(handlers)
        self._clock = clock

    @property
    def verbs(self) -> tuple[str, ...]:
        return tuple(v for v in VERBS if v in self._handlers)

    def handle(self, verb: str, payload: bytes) -> dict:
        """The answer for one request. Never raises: every failure becomes an error answer."""
        try:
            return self._handle(verb, payload)
        except Exception as exc:  # a validation bug must still answer, and must not kill the command thread
            log.exception("command validation failed", extra={"verb": verb})
            return {"ok": False, "verb": verb, "error": {"code": "internal", "message": (
                f"the request could not be checked ({type(exc).__name__}); see the kiosk's log and report it")}}

    def _handle(self, verb: str, payload: bytes) -> dict:
        try:
            if verb in SCHEMAS and verb not in self._handlers:
                raise CommandError("unknown_verb", f"verb {verb!r} is not enabled on this kiosk; "
                                                   f"it answers {', '.join(self.verbs) or 'nothing'}")
            args = validate(verb, payload, dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc))
            result = self._call(verb, args)
        except CommandError as exc:
            log.info("command refused", extra={"verb": verb, "code": exc.code, "reason": str(exc)})
            return {"ok": False, "verb": verb, "error": {"code": exc.code, "message": str(exc)}}
        log.info("command done", extra={"verb": verb})
        return {"ok": True, "verb": verb, "result": result}

    def _call(self, verb: str, args: dict) -> dict:
        try:
            result = self._handlers[verb](args)
        except CommandError:
            raise
        except Exception as exc:  # a handler's bug must not kill the command thread
            log.exception("command handler failed", extra={"verb": verb})
            raise CommandError("internal", f"the {verb} handler failed ({type(exc).__name__}: {exc}); "
                                           "see the kiosk's log and report it") from None
        if not isinstance(result, dict):
            log.error("command handler returned a non-dict", extra={"verb": verb, "result": repr(result)})
            raise CommandError("internal", f"the {verb} handler returned {type(result).__name__}, not an object; "
                                           "report it")
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.error("command handler returned non-JSON", extra={"verb": verb, "error": str(exc)})
            raise CommandError("internal", f"the {verb} handler's result is not JSON ({exc}); report it") from None
        return result
