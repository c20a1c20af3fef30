"""Checking one TOML table against declared keys: the kiosk's, the agent's and the lobby's sections.

Each key is declared once as a :class:`Key` (its type, default and limits);
every problem is appended to a list with the offending value and the fix, so
a technician corrects the whole file in one pass.
"""

import datetime as dt
import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass

REQUIRED = object()
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXAMPLES = {
    "int": "a whole number, e.g. 150",
    "float": "a finite number, e.g. 0.5",
    "bool": "true or false",
    "str": 'a quoted string, e.g. "abc"',
    "time": 'a time "HH:MM", e.g. "14:00"',
    "dates": 'a list of dates, e.g. ["2026-12-25"]',
    "weekdays": 'a list of weekdays, e.g. ["mon", "tue"]',
    "strings": 'a list of strings, e.g. ["central"]',
    "pin": 'a GPIO pin name or number, e.g. "GPIO17", 17 or "BOARD11"',
}


@dataclass(frozen=True)
class Key:
    kind: str  # int, float, bool, str, time, dates, weekdays, strings, pin
    default: object = REQUIRED
    choices: tuple = ()  # the only values allowed; () allows any value of the kind
    limits: tuple | None = None  # (low, high), both included: past them a value is a typo or overflows
    needed: str = ""  # an example value when the backend that declares the key cannot work without it


def check_table(where: str, table, keys: dict[str, Key], problems: list, allow_extra: bool = False) -> dict:
    """Type-check one TOML table against ``keys``, defaults filled in; bad values come back as None."""
    if not isinstance(table, dict):
        problems.append(f"{where} = {table!r} must be a table; write it as [{where}]")
        return dict.fromkeys(keys)
    if not allow_extra:
        problems += [unknown(dotted(where, k), v, keys) for k, v in table.items() if k not in keys]
    return {key: _typed(dotted(where, key), table.get(key, spec.default), spec, problems)
            for key, spec in keys.items()}


def check_limits(where: str, values: dict, keys: dict[str, Key], problems: list) -> None:
    """The declared choices, then the declared ranges, of a table ``check_table`` returned."""
    for key, spec in keys.items():
        value = values.get(key)
        if spec.choices and value is not None and value not in spec.choices:
            problems.append(f"{dotted(where, key)} = {value!r} is not allowed; use one of {list(spec.choices)}")
    for key, spec in keys.items():
        if spec.limits:
            check_range(dotted(where, key), values.get(key), *spec.limits, problems)


def _typed(name: str, value, spec: Key, problems: list):
    if value is REQUIRED:
        problems.append(f"{name} is missing; add it ({EXAMPLES[spec.kind]})")
        return None
    converted, ok = CONVERT[spec.kind](value)
    if not ok:
        example = EXAMPLES[spec.kind]
        if spec.kind == "float" and spec.default not in (REQUIRED, None):
            example = f"a finite number, e.g. {spec.default}"
        problems.append(f"{name} = {value!r} is not {example}; fix the value")
        return None
    return converted


def unknown(name: str, value, known) -> str:
    """The problem of a key nobody declared, with the closest declared one as the likely fix."""
    leaf = name.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "remove it (see hardware/kiosk.example.toml)"
    return f"unknown key {name} = {value!r}; {hint}"


def dotted(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def check_range(name: str, value, low, high, problems: list) -> None:
    """A number from low to high, both included (None: already reported as the wrong type)."""
    if value is not None and not low <= value <= high:
        problems.append(f"{name} = {value!r} is out of range; set {low!r} to {high!r}")


def check_dir(name: str, value, problems: list) -> None:
    """A directory the program can make or use: not empty, not a file, not under a file."""
    if value is None:
        return
    if not value.strip() or "\0" in value:
        problems.append(f"{name} = {value!r} is no directory path; set one, e.g. \"/var/lib/antrean\"")
        return
    path = os.path.abspath(value)
    while not os.path.lexists(path):  # the program makes what is missing, below what exists
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        where = "is" if path == os.path.abspath(value) else f"is under {path!r}, which is"
        problems.append(f"{name} = {value!r} {where} not a directory; choose a directory, "
                        "e.g. \"/var/lib/antrean\"")


def env_value(text: str):
    """An environment variable's value read as a TOML value, else as the string it is."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text


# ---------------------------------------------------------------- converters: (value, ok)

def _as_int(v):
    return v, isinstance(v, int) and not isinstance(v, bool)


def _as_float(v):
    if not (_as_int(v)[1] or isinstance(v, float)):
        return None, False
    try:
        number = float(v)
    except OverflowError:  # a whole number beyond any float
        return None, False
    return number, math.isfinite(number)  # TOML has inf and nan


def _as_bool(v):
    return v, isinstance(v, bool)


def _as_str(v):
    return v, isinstance(v, str)


def _as_time(v):
    return _from_text(v, dt.time, r"\d{2}:\d{2}", dt.time.fromisoformat)


def _as_date(v):
    return _from_text(v, dt.date, r"\d{4}-\d{2}-\d{2}", dt.date.fromisoformat)


def _from_text(v, kind: type, pattern: str, parse):
    """A TOML date/time value, or a string of exactly ``pattern`` that ``parse`` accepts."""
    if isinstance(v, kind) and not isinstance(v, dt.datetime):  # a datetime is a date too
        return v, True
    if isinstance(v, str) and re.fullmatch(pattern, v):
        try:
            return parse(v), True
        except ValueError:
            pass
    return None, False


def _as_dates(v):
    if not isinstance(v, list):
        return None, False
    dates = [_as_date(item) for item in v]
    return [d for d, _ in dates], all(ok for _, ok in dates)


def _as_weekdays(v):
    ok = isinstance(v, list) and all(isinstance(d, str) and d.lower() in WEEKDAYS for d in v)
    return ([WEEKDAYS.index(d.lower()) for d in v] if ok else None), ok


def _as_strings(v):
    return v, isinstance(v, list) and all(isinstance(s, str) for s in v)


def _as_pin(v):
    ok = v is None or (isinstance(v, str) and v != "") or _as_int(v)[1]
    return v, ok


CONVERT = {
    "int": _as_int, "float": _as_float, "bool": _as_bool, "str": _as_str, "time": _as_time,
    "dates": _as_dates, "weekdays": _as_weekdays, "strings": _as_strings, "pin": _as_pin,
}
