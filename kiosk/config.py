"""Layered configuration: defaults, then one TOML file, then ``KIOSK_*`` variables.

Every key is declared once with its type, default and limits: the kiosk's
own in ``KIOSK_SCHEMA``, a printer's or button source's by its backend class
(``OPTIONS``); :func:`schema` joins them. The documented example is
``hardware/kiosk.example.toml``. Validation collects
every problem before failing so a technician fixes the file in one pass.
"""

import datetime as dt
import os
import re
from dataclasses import dataclass

from common.config_file import parse_toml, read_file
from common.tables import Key, check_dir, check_limits, check_table, dotted, env_value, unknown
from kiosk.buttons import BACKENDS as BUTTON_SOURCES
from kiosk.errors import ConfigError
from kiosk.pins import GpioPin, bcm_pin
from kiosk.printer import BACKENDS as PRINTERS

# Sections owned by the edge agent and the lobby page; the kiosk passes them through.
OTHER_SECTIONS = ("agent", "mqtt", "targets", "lobby")
ENV_PREFIX = "KIOSK_"
ENV_RESERVED = {"KIOSK_CONFIG"}
LEDGER_FILE = "ledger.sqlite3"

# Every number has both ends: past them a value is a typo, and some (a timeout of
# 1e20 ms, a horizon of a billion days) would overflow the date or socket code.
# The keys of [printer] and [buttons] that a backend reads are declared by its class (OPTIONS).
KIOSK_SCHEMA = {
    "": {"id": Key("str", "kiosk-1"), "data_dir": Key("str", "/var/lib/antrean"),
         # the worker loop beats every second; less would flap
         "heartbeat_stale_s": Key("int", 20, limits=(3, 3600))},
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
        "booking_horizon_days": Key("int", 10, limits=(1, 366)),
    },
    "printer": {  # the paper, whatever link the printer is on
        "paper_width_mm": Key("int", 58, choices=(58, 80)),
        "code_page": Key("str", "CP437"),
        "profile": Key("str", "default"),
        "qr_code": Key("str", "auto", choices=("auto", "native", "image")),
    },
    "buttons": {  # the press guard's, whatever the source
        "cooldown_ms": Key("int", 2000, limits=(0, 60_000)),
        "burst_max_tickets": Key("int", 10, limits=(1, 1000)),
        "burst_window_minutes": Key("int", 5, limits=(1, 1440)),
    },
    "clock": {"max_leap_days": Key("int", 14, limits=(1, 366))},
    "log": {"level": Key("str", "info", choices=("debug", "info", "warning", "error")),
            "format": Key("str", "json", choices=("json", "text"))},
}
DEFAULT_BACKEND = {"printer": "file", "buttons": "gpio"}
BACKEND_SECTIONS = {"printer": PRINTERS, "buttons": BUTTON_SOURCES}  # each section's backends
SERVICE_SCHEMA = {
    "code": Key("str"),
    "name": Key("str"),
    "daily_quota": Key("int", 150),
    "button": Key("pin", None),
    "led": Key("pin", None),
    "needs_targets": Key("strings", []),
}
MAX_DAILY_QUOTA = 9999
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
    sections = schema()
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        section, key = _env_target(name[len(ENV_PREFIX):].lower(), sections)
        if key is None:
            problems.append(f"environment variable {name}={env[name]!r} names no config key; "
                            "use KIOSK_<SECTION>_<KEY>, e.g. KIOSK_PRINTER_PATH, or unset it")
            continue
        value = env_value(env[name])
        (raw.setdefault(section, {}) if section else raw)[key] = value
    return problems


def _env_target(rest: str, sections: dict) -> tuple[str, str | None]:
    if rest in sections[""]:
        return "", rest
    for section, keys in sections.items():
        if section and rest.startswith(section + "_") and rest[len(section) + 1:] in keys:
            return section, rest[len(section) + 1:]
    return "", None


def schema() -> dict[str, dict[str, Key]]:
    """Every section's keys: the kiosk's own, and in [printer] and [buttons] the backend choice and what
    every registered backend declares (any of them may be set whichever backend is chosen)."""
    sections = {section: dict(keys) for section, keys in KIOSK_SCHEMA.items()}
    for section, registry in BACKEND_SECTIONS.items():
        declared = registry.options()
        taken = declared.keys() & {"backend", *sections[section]}
        if taken:
            raise TypeError(f"a {registry.what} backend declares {sorted(taken)}, keys of the kiosk's own "
                            f"[{section}]; give the backend's keys its name as a prefix")
        chosen = {"backend": Key("str", DEFAULT_BACKEND[section], choices=registry.names())}
        sections[section] = {**chosen, **declared, **sections[section]}
    return sections


# ---------------------------------------------------------------- validation

def validate(raw: dict, source: str = "<config>") -> tuple[Config | None, list[str]]:
    problems: list[str] = []
    sections = schema()
    values = _check_sections(raw, sections, problems)
    services = _check_services(raw.get("services", []), problems)
    calendar = _check_calendar(values["calendar"], problems)
    _check_rules(values, sections, problems)
    for section in BACKEND_SECTIONS:
        _check_backend(section, values[section], services, problems)
    if problems:
        return None, problems
    return _build(values, services, calendar, raw, source), []


def _check_sections(raw: dict, sections: dict, problems: list) -> dict[str, dict]:
    """Type-check every declared key; return {section: {key: value}} with defaults filled in."""
    for name, value in raw.items():
        if name in sections[""] or name in sections or name == "services" or name in OTHER_SECTIONS:
            continue
        problems.append(unknown(name, value, list(sections[""]) + list(sections) + ["services"]))
    return {section: check_table(section, raw if section == "" else raw.get(section, {}), keys, problems,
                                 allow_extra=not section)
            for section, keys in sections.items()}


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


def _check_calendar(calendar: dict, problems: list) -> Calendar | None:
    get = calendar.get
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


def _check_rules(values: dict, sections: dict, problems: list) -> None:
    for section, keys in sections.items():
        check_limits(section, values[section], keys, problems)
    _check_ids(values, problems)
    check_dir("data_dir", values[""]["data_dir"], problems)
    _check_timezone(values["office"]["timezone"], problems)
    _check_paper(values["printer"], values[""]["data_dir"], problems)


def _check_backend(section: str, options: dict, services, problems: list) -> None:
    """What the chosen backend cannot work without, and what its class checks itself."""
    name = options["backend"]
    if name not in BACKEND_SECTIONS[section].names():
        return  # reported as not allowed, or as the wrong type
    backend = BACKEND_SECTIONS[section].load(name)
    # The printer's message has always quoted the name as Python does, the buttons' as TOML does.
    shown = repr(name) if section == "printer" else f'"{name}"'
    for key, spec in backend.OPTIONS.items():
        if spec.needed and not options[key]:
            problems.append(f"{section}.{key} is not set but {section}.backend = {shown} needs it; "
                            f"set it, e.g. {key} = {spec.needed}")
    problems += backend.config_problems(options, services)


def _check_ids(values: dict, problems: list) -> None:
    for section, key, example in (("", "id", "kiosk-1"), ("office", "id", "serang-kota")):
        value = values[section][key]
        if value is not None and not ID_PATTERN.fullmatch(value):
            problems.append(f"{dotted(section, key)} = {value!r} names MQTT topics; use 1 to 64 lower-case "
                            f"letters, digits, '-' or '_', starting with a letter or digit, e.g. \"{example}\"")
    kiosk_id = values[""]["id"]
    if kiosk_id in RESERVED_IDS:
        problems.append(f"id = {kiosk_id!r} is a topic word of antrean/<office>/ (docs/mqtt.md); choose "
                        f"another, e.g. \"kiosk-1\" (reserved: {', '.join(sorted(RESERVED_IDS))})")


def _check_timezone(name, problems: list) -> None:
    from zoneinfo import ZoneInfo

    if name is None:
        return
    try:
        ZoneInfo(name)
    except (ValueError, OSError, LookupError):
        problems.append(f"office.timezone = {name!r} is not a known timezone; use e.g. "
                        '"Asia/Jakarta" (WIB), "Asia/Makassar" (WITA) or "Asia/Jayapura" (WIT)')


def _check_paper(printer: dict, data_dir, problems: list) -> None:
    from kiosk import layout  # python-escpos knows the profiles and their code pages

    profile, code_page = printer["profile"], printer["code_page"]
    if profile is None or code_page is None:
        return
    # This is python-escpos's first import, and the only moment its cache location counts. The
    # kiosk's first start makes <data_dir>/cache (build_kiosk); other users' tools fall back.
    cache = os.path.join(data_dir or "", "cache")
    layout.prepare(cache if "\0" not in cache and os.access(cache, os.W_OK) else None)  # NUL: check_dir said
    width, qr_code = printer["paper_width_mm"], printer["qr_code"]
    try:  # a bad width or qr_code is reported above: check the profile against the defaults then
        layout.check_paper(layout.Paper(width if width in layout.COLUMNS else 58, code_page, profile,
                                        qr_code if qr_code in layout.QR_MODES else "auto"))
    except ValueError as exc:
        problems.append(f"printer.profile = {profile!r}, printer.code_page = {code_page!r}: {exc}")


def _build(values, services, calendar, raw, source) -> Config:
    return Config(
        id=values[""]["id"], data_dir=values[""]["data_dir"],
        office_id=values["office"]["id"], office_name=values["office"]["name"],
        timezone=values["office"]["timezone"], services=services, calendar=calendar,
        printer=values["printer"], buttons=values["buttons"], clock=values["clock"], log=values["log"],
        other={k: raw[k] for k in OTHER_SECTIONS if k in raw}, source=source,
        heartbeat_stale_s=values[""]["heartbeat_stale_s"],
    )
