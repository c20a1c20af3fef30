"""One builder for the kiosk's TOML file (the agent and the lobby read their sections from it too).

A config is a dict shaped like the file; :func:`toml` writes it. The presets are the offices the
tests and the benchmarks run: :func:`desk_config` (GPIO buttons and the dummy printer, in-process),
:func:`process_config` (``kiosk run`` as a process: the file printer, the keyboard on stdin, open
around the clock) and :func:`busy_office` (the benchmarks' four services). A test changes the
dict before writing it, so every file says only what the test is about.
"""

import json
from pathlib import Path

from kiosk import config as kconfig

# code: name, button, LED
SERVICES = {
    "A": ("Perekaman e-KTP", "GPIO17", "GPIO27"),
    "B": ("Kartu Keluarga", "GPIO22", "GPIO23"),
    "C": ("Akta Kelahiran", "GPIO5", "GPIO6"),
    "D": ("Pindah Datang", "GPIO13", "GPIO19"),
}
OFFICE = {"id": "serang-kota", "name": "Disdukcapil Kota Serang"}
LAB_OFFICE = {"id": "lab-office", "name": "Disdukcapil Lab"}  # the network tests' office
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALWAYS_OPEN = {"open_weekdays": EVERY_DAY, "opens_at": "00:00", "last_ticket_at": "23:59", "closes_at": "23:59"}
MQTT_OFF = {"enabled": False}


def service(code: str, quota: int, *, pins: bool = False, **extra) -> dict:
    """One ``[[services]]`` entry; with ``pins`` its GPIO button and LED."""
    name, button, led = SERVICES[code]
    entry = {"code": code, "name": name, "daily_quota": quota}
    if pins:
        entry.update(button=button, led=led)
    return {**entry, **extra}


def file_printer(data_dir, **extra) -> dict:
    """The printer that appends to ``data_dir/printer.out``: what a process's tickets are read back from."""
    return {"backend": "file", "path": f"{data_dir}/printer.out", "create": True, **extra}


def kiosk_config(data_dir, services: list, *, office: dict = OFFICE, calendar: dict | None = None,
                 kiosk_id: str = "kiosk-1", **tables) -> dict:
    """The file's skeleton: id, data_dir, office, calendar, services, then ``tables`` in order (printer ...).

    A top-level key added later (``doc["heartbeat_stale_s"] = 3``) is still written before the tables.
    """
    return {"id": kiosk_id, "data_dir": str(data_dir), "office": dict(office),
            **({"calendar": calendar} if calendar is not None else {}), "services": services, **tables}


def desk_config(data_dir) -> dict:
    """The in-process tests' kiosk: GPIO buttons, the dummy printer, service A nearly full (quota 3)."""
    return kiosk_config(data_dir, [service("A", 3, pins=True), service("B", 150, pins=True)],
                        calendar={"holidays": ["2026-12-25"], "booking_horizon_days": 5},
                        printer={"backend": "dummy"}, buttons={"cooldown_ms": 0})


def process_config(data_dir, quota: int, horizon: int = 4) -> dict:
    """``kiosk run`` as a process: the file printer, the keyboard on stdin, open around the clock."""
    return kiosk_config(data_dir, [service("A", quota), service("B", quota)],
                        calendar={**ALWAYS_OPEN, "booking_horizon_days": horizon}, printer=file_printer(data_dir),
                        buttons={"backend": "keyboard", "cooldown_ms": 0})


def busy_office(data_dir, paper: int = 58, quota: int = 150, horizon: int = 10) -> dict:
    """The benchmarks' busy Disdukcapil office: four services, a working week, JSON logs."""
    office = {"id": "serang-kota", "name": "Dinas Kependudukan dan Pencatatan Sipil Kota Serang",
              "timezone": "Asia/Jakarta"}
    calendar = {"open_weekdays": EVERY_DAY[:5], "holidays": ["2026-12-25", "2027-01-01"], "opens_at": "08:00",
                "last_ticket_at": "14:00", "closes_at": "15:00", "booking_horizon_days": horizon}
    return kiosk_config(data_dir, [service(code, quota, pins=True) for code in SERVICES], office=office,
                        calendar=calendar, printer=file_printer(data_dir, paper_width_mm=paper),
                        buttons={"backend": "keyboard", "cooldown_ms": 0}, log={"level": "info", "format": "json"})


def targets(*entries: dict) -> list:
    """``[[targets]]`` entries, each given as its keys."""
    return [dict(entry) for entry in entries]


def toml(doc: dict) -> str:
    """The TOML text of ``doc``: keys first, then tables and arrays of tables, in the dict's order."""
    return "\n".join(_table_lines(doc, ())) + "\n"


def write(path, doc: dict) -> Path:
    path = Path(path)
    path.write_text(toml(doc))
    return path


def load(doc: dict) -> kconfig.Config:
    return kconfig.loads(toml(doc), source="test")


def _table_lines(table: dict, name: tuple) -> list[str]:
    lines = [f"{key} = {_value(value)}" for key, value in table.items() if not _is_table(value)]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += [f"[{'.'.join(name + (key,))}]"] + _table_lines(value, name + (key,))
        elif _is_table(value):
            for entry in value:
                lines += [f"[[{'.'.join(name + (key,))}]]"] + _table_lines(entry, name + (key,))
    return lines


def _is_table(value) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and bool(value) and isinstance(value[0], dict))


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value)  # strings and lists of them: JSON's escapes are TOML's


BASE_TOML = toml(desk_config("{data_dir}"))  # str.format(data_dir=...) fills it
