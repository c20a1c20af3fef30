"""Layered configuration: defaults, then one TOML file, then ``KIOSK_*`` variables.

Every key is declared once in ``SCHEMA`` with its type and default; the
documented example is ``hardware/kiosk.example.toml``. Validation collects
every problem before failing so a technician fixes the file in one pass.
"""

import datetime as dt
import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass

from button_panel.protocol import MAX_BUTTONS as PANEL_MAX_BUTTONS  # what the panel firmware drives

from common.config_file import parse_toml, read_file
from kiosk.errors import ConfigError
from kiosk.pins import GpioPin, bcm_pin

REQUIRED = object()
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Sections owned by the edge agent and the lobby page; the kiosk passes them through.
OTHER_SECTIONS = ("agent", "mqtt", "targets", "lobby")
ENV_PREFIX = "KIOSK_"
ENV_RESERVED = {"KIOSK_CONFIG"}
LEDGER_FILE = "ledger.sqlite3"


@dataclass(frozen=True)
class Key:
    kind: str  # int, bool, str, time, dates, weekdays, strings, pin
    default: object = REQUIRED


SCHEMA = {
    "": {"id": Key("str", "kiosk-1"), "data_dir": Key("str", "/var/lib/antrean"),
         "heartbeat_stale_s": Key("int", 20)},
    "office": {
        "id": Key("str"),
        "name": Key("str"),
        "timezone": Key("str", "Asia/Jakarta"),
    },
    "calendar": {
        "open_weekdays": Key("weekdays", ["mon", "tue", "wed", "thu", "fri"]),
        "holidays": Key("dates", []),
        "extra_open_days": Key("dates", []),
        "opens_at": Key("time", "08:00"),
        "last_ticket_at": Key("time", "14:00"),
        "closes_at": Key("time", "15:00"),
        "booking_horizon_days": Key("int", 10),
    },
    "printer": {
        "backend": Key("str", "file"),
        "path": Key("str", "/dev/usb/lp0"),
        "create": Key("bool", False),
        "serial_port": Key("str", ""),
        "baud_rate": Key("int", 9600),
        "flow_control": Key("str", "none"),
        "host": Key("str", ""),
        "tcp_port": Key("int", 9100),
        "usb_vendor_id": Key("int", 0),
        "usb_product_id": Key("int", 0),
        "usb_in_ep": Key("int", 0x82),
        "usb_out_ep": Key("int", 0x01),
        "connect_timeout_ms": Key("int", 3000),
        "write_timeout_ms": Key("int", 5000),
        "status_timeout_ms": Key("int", 300),
        "out_dir": Key("str", ""),
        "paper_width_mm": Key("int", 58),
        "code_page": Key("str", "CP437"),
        "profile": Key("str", "default"),
        "qr_code": Key("str", "auto"),
    },
    "buttons": {
        "backend": Key("str", "gpio"),
        "pin_factory": Key("str", ""),
        "pull_up": Key("bool", True),
        "bounce_time_ms": Key("int", 50),
        "cooldown_ms": Key("int", 2000),
        "burst_max_tickets": Key("int", 10),
        "burst_window_minutes": Key("int", 5),
        "panel_port": Key("str", ""),
        "panel_baud_rate": Key("int", 115200),
        "panel_heartbeat_timeout_ms": Key("int", 3000),
        "panel_reconnect_s": Key("float", 1.0),
    },
    "clock": {"max_leap_days": Key("int", 14)},
    "log": {"level": Key("str", "info"), "format": Key("str", "json")},
}
SERVICE_SCHEMA = {
    "code": Key("str"),
    "name": Key("str"),
    "daily_quota": Key("int", 150),
    "button": Key("pin", None),
    "led": Key("pin", None),
    "needs_targets": Key("strings", []),
}
CHOICES = {
    ("printer", "backend"): ("file", "serial", "tcp", "usb", "sim", "dummy"),
    ("printer", "baud_rate"): (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200),
    ("printer", "flow_control"): ("none", "rtscts", "dsrdtr", "xonxoff"),
    ("printer", "qr_code"): ("auto", "native", "image"),
    ("printer", "paper_width_mm"): (58, 80),
    ("buttons", "backend"): ("gpio", "keyboard", "panel"),
    ("buttons", "pin_factory"): ("", "mock", "lgpio", "rpigpio", "native"),
    ("log", "level"): ("debug", "info", "warning", "error"),
    ("log", "format"): ("json", "text"),
}
# Every number has both ends: past them a value is a typo, and some (a timeout of
# 1e20 ms, a horizon of a billion days) would overflow the date or socket code.
RANGES = {
    ("printer", "tcp_port"): (1, 65535),
    ("printer", "connect_timeout_ms"): (1, 60_000),
    ("printer", "write_timeout_ms"): (1, 120_000),
    ("printer", "status_timeout_ms"): (1, 10_000),
    ("printer", "usb_vendor_id"): (0, 0xFFFF),
    ("printer", "usb_product_id"): (0, 0xFFFF),
    ("printer", "usb_in_ep"): (0, 0xFF),
    ("printer", "usb_out_ep"): (0, 0xFF),
    ("calendar", "booking_horizon_days"): (1, 366),
    ("buttons", "bounce_time_ms"): (0, 1000),
    ("buttons", "cooldown_ms"): (0, 60_000),
    ("buttons", "burst_max_tickets"): (1, 1000),
    ("buttons", "burst_window_minutes"): (1, 1440),
    ("buttons", "panel_baud_rate"): (1200, 4_000_000),
    ("buttons", "panel_heartbeat_timeout_ms"): (1000, 60_000),  # the panel beats every 1000 ms
    ("buttons", "panel_reconnect_s"): (0.1, 600),
    ("clock", "max_leap_days"): (1, 366),
    ("", "heartbeat_stale_s"): (3, 3600),  # the worker loop beats every second; less would flap
}
MAX_DAILY_QUOTA = 9999
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
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # always fullmatch: "$" would let a "\n" through
# Topic levels beside or below antrean/<office>/<kiosk> (docs/mqtt.md): a kiosk named so would
# read or write another topic's messages.
RESERVED_IDS = frozenset({"bridge", "status", "health", "network", "events", "cmd", "reply"})


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    daily_quota: int
    button: GpioPin | None  # one BCM number however it was written; str(pin) is "GPIO17"
    led: GpioPin | None
    needs_targets: tuple[str, ...]


@dataclass(frozen=True)
class Calendar:
    open_weekdays: frozenset[int]  # Monday is 0, as in date.weekday()
    holidays: frozenset[dt.date]
    extra_open_days: frozenset[dt.date]
    opens_at: dt.time
    last_ticket_at: dt.time
    closes_at: dt.time
    booking_horizon_days: int


@dataclass(frozen=True)
class Config:
    id: str
    data_dir: str
    office_id: str
    office_name: str
    timezone: str
    services: tuple[Service, ...]
    calendar: Calendar
    printer: dict
    buttons: dict
    clock: dict
    log: dict
    other: dict  # sections for the agent and lobby page, unvalidated here
    source: str = "<defaults>"
    heartbeat_stale_s: int = 20  # kiosk/liveness.py: a heartbeat older than this with the process alive is "hung"

    def service(self, code: str) -> Service:
        for service in self.services:
            if service.code == code:
                return service
        raise KeyError(code)

    @property
    def ledger_path(self) -> str:
        """Where the ledger lives; every reader and writer of it asks here."""
        return os.path.join(self.data_dir, LEDGER_FILE)

    @property
    def tz(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


# ---------------------------------------------------------------- loading

def load(path: str | None = None, env: dict | None = None, overrides: dict | None = None) -> Config:
    """Read defaults, then ``path``, then ``KIOSK_*`` from ``env``; validate; raise ConfigError."""
    raw = read_file(path) if path else {}
    _merge(raw, overrides or {})
    problems = apply_env(raw, os.environ if env is None else env)
    config, more = validate(raw, source=path or "<defaults>")
    problems += more
    if problems:
        raise ConfigError(problems)
    return config


def loads(text: str, env: dict | None = None, source: str = "<string>") -> Config:
    raw = parse_toml(text, source)
    problems = apply_env(raw, env or {})
    config, more = validate(raw, source=source)
    if problems + more:
        raise ConfigError(problems + more)
    return config


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def apply_env(raw: dict, env) -> list[str]:
    """Overlay ``KIOSK_SECTION_KEY=value``; values are read as TOML values, else as strings."""
    problems = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        section, key = _env_target(name[len(ENV_PREFIX):].lower())
        if key is None:
            problems.append(f"environment variable {name}={env[name]!r} names no config key; "
                            "use KIOSK_<SECTION>_<KEY>, e.g. KIOSK_PRINTER_PATH, or unset it")
            continue
        value = env_value(env[name])
        (raw.setdefault(section, {}) if section else raw)[key] = value
    return problems


def _env_target(rest: str) -> tuple[str, str | None]:
    if rest in SCHEMA[""]:
        return "", rest
    for section, keys in SCHEMA.items():
        if section and rest.startswith(section + "_") and rest[len(section) + 1:] in keys:
            return section, rest[len(section) + 1:]
    return "", None


def env_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text


# ---------------------------------------------------------------- validation

def validate(raw: dict, source: str = "<config>") -> tuple[Config | None, list[str]]:
    problems: list[str] = []
    flat = _check_sections(raw, problems)
    services = _check_services(raw.get("services", []), problems)
    calendar = _check_calendar(flat, problems)
    _check_rules(flat, problems)
    _check_panel_size(flat, services, problems)
    if problems:
        return None, problems
    return _build(flat, services, calendar, raw, source), []


def _check_sections(raw: dict, problems: list) -> dict:
    """Type-check every declared key; return {(section, key): value} with defaults filled in."""
    flat = {}
    for name, value in raw.items():
        if name in SCHEMA[""] or name in SCHEMA or name == "services" or name in OTHER_SECTIONS:
            continue
        problems.append(_unknown(name, value, list(SCHEMA[""]) + list(SCHEMA) + ["services"]))
    for section, keys in SCHEMA.items():
        table = raw if section == "" else raw.get(section, {})
        values = check_table(section, table, keys, problems, allow_extra=not section)
        flat.update({(section, key): value for key, value in values.items()})
    return flat


def check_table(where: str, table, keys: dict[str, Key], problems: list, allow_extra: bool = False) -> dict:
    """Type-check one TOML table against ``keys``, defaults filled in; bad values come back as None."""
    if not isinstance(table, dict):
        problems.append(f"{where} = {table!r} must be a table; write it as [{where}]")
        return dict.fromkeys(keys)
    if not allow_extra:
        problems += [_unknown(_dotted(where, k), v, keys) for k, v in table.items() if k not in keys]
    return {key: _typed(_dotted(where, key), table.get(key, spec.default), spec, problems)
            for key, spec in keys.items()}


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


def _unknown(name: str, value, known) -> str:
    leaf = name.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "remove it (see hardware/kiosk.example.toml)"
    return f"unknown key {name} = {value!r}; {hint}"


def _dotted(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


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


def _check_services(items, problems: list) -> tuple[Service, ...]:
    if not isinstance(items, list) or not items:
        problems.append("no [[services]] defined; add at least one, e.g. "
                        '[[services]] code = "A" name = "Perekaman e-KTP" daily_quota = 150')
        return ()
    checked = [(_check_service(i, item, problems), item) for i, item in enumerate(items)]
    checked = [(service, item) for service, item in checked if service is not None]
    services = tuple(service for service, _ in checked)
    _check_unique(services, "code", problems)
    _check_pins(checked, problems)
    return services


def _pin(name: str, value, problems: list) -> GpioPin | None:
    if value is None:
        return None
    pin, why = bcm_pin(value)
    if pin is None:
        problems.append(f"{name} = {value!r} {why}")
    return pin


def _check_service(index: int, item, problems: list) -> Service | None:
    where = f"services[{index}]"
    before = len(problems)
    values = check_table(where, item, SERVICE_SCHEMA, problems)
    if len(problems) > before:
        return None
    if not re.fullmatch(r"[A-Z]", values["code"]):
        problems.append(f"{where}.code = {values['code']!r} is not one capital letter; use A-Z, e.g. \"A\"")
    if not values["name"].strip():
        problems.append(f"{where}.name is empty; give the service's Indonesian name")
    if values["daily_quota"] < 0:
        problems.append(f"{where}.daily_quota = {values['daily_quota']} is negative; "
                        "set 0 or more (0 closes the service)")
    elif values["daily_quota"] > MAX_DAILY_QUOTA:
        problems.append(f"{where}.daily_quota = {values['daily_quota']} is out of range; "
                        f"set 0 to {MAX_DAILY_QUOTA}")
    button, led = (_pin(f"{where}.{key}", values[key], problems) for key in ("button", "led"))
    return Service(values["code"], values["name"], values["daily_quota"], button, led,
                   tuple(values["needs_targets"]))


def _check_unique(services, field: str, problems: list) -> None:
    seen = {}
    for service in services:
        value = getattr(service, field)
        if value in seen:
            problems.append(f"services {seen[value]!r} and {service.code!r} share {field} = {value!r}; "
                            f"give each service its own {field}")
        seen[value] = service.code


def _check_pins(checked, problems: list) -> None:
    """Every button and LED on a pin of its own, compared as BCM numbers: 17, "GPIO17" and
    "BOARD11" are one pin, and gpiozero would hand it to both."""
    users = {}
    for service, item in checked:
        for field in ("button", "led"):
            pin = getattr(service, field)
            if pin is None:
                continue
            if pin not in users:
                users[pin] = (service.code, field, item[field])
                continue
            code, other, written = users[pin]
            problems.append(f"service {service.code!r} {field} = {item[field]!r} is {pin}, already the {other} "
                            f"of service {code!r} ({other} = {written!r}); give each button and LED its own pin")


def _check_calendar(flat: dict, problems: list) -> Calendar | None:
    get = lambda key: flat.get(("calendar", key))  # noqa: E731
    if None in (get("opens_at"), get("last_ticket_at"), get("closes_at"), get("open_weekdays")):
        return None
    if not get("opens_at") < get("last_ticket_at") <= get("closes_at"):
        problems.append(f"calendar: opens_at {get('opens_at'):%H:%M} < last_ticket_at "
                        f"{get('last_ticket_at'):%H:%M} <= closes_at {get('closes_at'):%H:%M} "
                        "does not hold; set the three times in that order")
    if not get("open_weekdays") and not get("extra_open_days"):
        problems.append("calendar.open_weekdays = [] and no extra_open_days: the office never opens; "
                        'list its weekdays, e.g. ["mon", "tue", "wed", "thu", "fri"]')
    return Calendar(frozenset(get("open_weekdays")), frozenset(get("holidays") or ()),
                    frozenset(get("extra_open_days") or ()), get("opens_at"), get("last_ticket_at"),
                    get("closes_at"), get("booking_horizon_days") or 1)


def _check_rules(flat: dict, problems: list) -> None:
    for (section, key), allowed in CHOICES.items():
        value = flat.get((section, key))
        if value is not None and value not in allowed:
            problems.append(f"{section}.{key} = {value!r} is not allowed; use one of {list(allowed)}")
    for (section, key), (low, high) in RANGES.items():
        check_range(_dotted(section, key), flat.get((section, key)), low, high, problems)
    _check_ids(flat, problems)
    check_dir("data_dir", flat.get(("", "data_dir")), problems)
    _check_timezone(flat.get(("office", "timezone")), problems)
    _check_paper(flat, problems)
    _check_printer_link(flat, problems)
    if flat.get(("buttons", "backend")) == "panel" and not flat.get(("buttons", "panel_port")):
        problems.append('buttons.panel_port is not set but buttons.backend = "panel" needs it; '
                        'set it, e.g. panel_port = "/dev/antrean-panel"')


def _check_panel_size(flat: dict, services, problems: list) -> None:
    if flat.get(("buttons", "backend")) == "panel" and len(services) > PANEL_MAX_BUTTONS:
        problems.append(f"buttons.backend = \"panel\" with {len(services)} [[services]]: the button panel "
                        f"has at most {PANEL_MAX_BUTTONS} buttons; configure at most {PANEL_MAX_BUTTONS} "
                        "services, or use backend = \"gpio\"")


def check_range(name: str, value, low, high, problems: list) -> None:
    """A number from low to high, both included (None: already reported as the wrong type)."""
    if value is not None and not low <= value <= high:
        problems.append(f"{name} = {value!r} is out of range; set {low!r} to {high!r}")


def _check_ids(flat: dict, problems: list) -> None:
    for section, key, example in (("", "id", "kiosk-1"), ("office", "id", "serang-kota")):
        value = flat.get((section, key))
        if value is not None and not ID_PATTERN.fullmatch(value):
            problems.append(f"{_dotted(section, key)} = {value!r} names MQTT topics; use 1 to 64 lower-case "
                            f"letters, digits, '-' or '_', starting with a letter or digit, e.g. \"{example}\"")
    kiosk_id = flat.get(("", "id"))
    if kiosk_id in RESERVED_IDS:
        problems.append(f"id = {kiosk_id!r} is a topic word of antrean/<office>/ (docs/mqtt.md); choose "
                        f"another, e.g. \"kiosk-1\" (reserved: {', '.join(sorted(RESERVED_IDS))})")


def check_dir(name: str, value, problems: list) -> None:
    """A directory the program can make or use: not empty, not a file, not under a file."""
    if value is None:
        return
    if not value.strip() or "\0" in value:
        problems.append(f"{name} = {value!r} is no directory path; set one, e.g. \"/var/lib/antrean\"")
        return
    path = os.path.abspath(value)
    while not os.path.lexists(path):  # the kiosk makes what is missing, below what exists
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        where = "is" if path == os.path.abspath(value) else f"is under {path!r}, which is"
        problems.append(f"{name} = {value!r} {where} not a directory; choose a directory, "
                        "e.g. \"/var/lib/antrean\"")


def _check_timezone(name, problems: list) -> None:
    from zoneinfo import ZoneInfo

    if name is None:
        return
    try:
        ZoneInfo(name)
    except (ValueError, OSError, LookupError):
        problems.append(f"office.timezone = {name!r} is not a known timezone; use e.g. "
                        '"Asia/Jakarta" (WIB), "Asia/Makassar" (WITA) or "Asia/Jayapura" (WIT)')


# What each printer backend cannot work without.
LINK_NEEDS = {
    "file": (("path", '"/dev/usb/lp0"'),),
    "serial": (("serial_port", '"/dev/ttyUSB0"'),),
    "tcp": (("host", '"192.168.1.50"'),),
    "usb": (("usb_vendor_id", "0x04b8"), ("usb_product_id", "0x0202")),
}


def _check_printer_link(flat: dict, problems: list) -> None:
    backend = flat.get(("printer", "backend"))
    for key, example in LINK_NEEDS.get(backend, ()):
        if not flat.get(("printer", key)):
            problems.append(f"printer.{key} is not set but printer.backend = {backend!r} needs it; "
                            f"set it, e.g. {key} = {example}")


def _check_paper(flat: dict, problems: list) -> None:
    from kiosk import layout  # python-escpos knows the profiles and their code pages

    profile, code_page = flat.get(("printer", "profile")), flat.get(("printer", "code_page"))
    if profile is None or code_page is None:
        return
    # This is python-escpos's first import, and the only moment its cache location counts. The
    # kiosk's first start makes <data_dir>/cache (build_kiosk); other users' tools fall back.
    cache = os.path.join(flat.get(("", "data_dir")) or "", "cache")
    layout.prepare(cache if "\0" not in cache and os.access(cache, os.W_OK) else None)  # NUL: check_dir said
    width, qr_code = flat.get(("printer", "paper_width_mm")), flat.get(("printer", "qr_code"))
    try:  # a bad width or qr_code is reported above: check the profile against the defaults then
        layout.check_paper(layout.Paper(width if width in layout.COLUMNS else 58, code_page, profile,
                                        qr_code if qr_code in layout.QR_MODES else "auto"))
    except ValueError as exc:
        problems.append(f"printer.profile = {profile!r}, printer.code_page = {code_page!r}: {exc}")


def _build(flat, services, calendar, raw, source) -> Config:
    section = lambda name: {k: flat[name, k] for k in SCHEMA[name]}  # noqa: E731
    return Config(
        id=flat["", "id"], data_dir=flat["", "data_dir"],
        office_id=flat["office", "id"], office_name=flat["office", "name"],
        timezone=flat["office", "timezone"], services=services, calendar=calendar,
        printer=section("printer"), buttons=section("buttons"), clock=section("clock"),
        log=section("log"),
        other={k: raw[k] for k in OTHER_SECTIONS if k in raw}, source=source,
        heartbeat_stale_s=flat["", "heartbeat_stale_s"],
    )
