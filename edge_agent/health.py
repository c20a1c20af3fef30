"""The device's health as one JSON-ready dict: the MQTT ``health`` payload.

Every source is optional. The shape is fixed: each source key below is always
present, holding its value, or ``null`` when the source is missing here (not
a Pi, no permission, command absent, no ledger yet). Every ``null`` source
has its reason in ``unavailable`` under the same key, and nothing else is in
``unavailable``. ``collect_health`` never raises.

Source keys: ``boot_id``, ``uptime_s``, ``model``, ``cpu_temp_c``,
``throttling`` (raw hex plus the four conditions ``now`` and ``since_boot``),
``load`` ([1, 5, 15 min]), ``memory``, ``disk`` (the data partition),
``data_mount`` (its mount, ``readonly``), ``mmc_errors`` (SD/MMC fault lines
in the kernel log), ``clock_synced``, ``boots`` (unclean boots) and
``kiosk`` (whether the kiosk process runs, printer, clock, prints owed,
per-service counts today).
Always present besides: ``schema``, ``at``, ``software``, ``alerts`` (short
codes for what needs a person, e.g. ``under_voltage_since_boot``),
``unavailable`` and ``collect_ms``.

``health_changed`` tells the agent when a new collection is worth publishing
at once (a fact changed) rather than at the routine interval (drift).
"""

import datetime as dt
import os
import platform
import time

from edge_agent import health_sources as src
from edge_agent.errors import AgentError
from edge_agent.health_kiosk import KioskWatch, kiosk_health
from kiosk.seam import Config, Liveness, PrinterStatus, __version__

SCHEMA = 1
HOT_C, COOL_C = 80.0, 75.0  # hot at 80 °C; cool again only below 75, so jitter at 80 is not news
DISK_LOW_PCT, DISK_OK_PCT = 10.0, 11.0  # low below 10 % free; fine again from 11 %
BANDED_ALERTS = frozenset({"cpu_hot", "disk_low"})  # compared with hysteresis, not as alerts
QUIET_PRINTER_STATES = (PrinterStatus.OK, PrinterStatus.UNKNOWN)  # a near end of paper is an alert
KIOSK_DOWN = (Liveness.NOT_RUNNING, Liveness.HUNG)  # states of the kiosk process that need a person


def collect_health(config: Config, *, boots=None, root: str = "/", run=src.run_command,
                   statvfs=os.statvfs, now=time.time, kiosk_watch: KioskWatch | None = None) -> dict:
    """Collect every source; ``boots`` is a started edge_agent.boots.BootLog, ``kiosk_watch`` the agent's
    edge_agent.health_kiosk.KioskWatch (None: one look at the kiosk's liveness now)."""
    started = time.perf_counter()
    host = src.Host(root, run, statvfs)
    collected_at = dt.datetime.fromtimestamp(now(), config.tz).isoformat(timespec="seconds")
    health = {"schema": SCHEMA, "collected_at": collected_at,
              "alerts": [], "software": {"antrean": __version__, "python": platform.python_version()}}
    unavailable = {}
    for name, source in _sources(config, host, boots, now, kiosk_watch):
        health[name] = _gather(name, source, unavailable)
    health["alerts"] = alerts(health)
    health["unavailable"] = unavailable
    health["collect_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return health


def _sources(config, host, boots, now, kiosk_watch):
    return (
        ("system_boot_id", lambda: src.boot_id(host)),
        ("uptime_s", lambda: src.uptime_s(host)),
        ("model", lambda: src.model(host)),
        ("cpu_temp_c", lambda: src.cpu_temp_c(host)),
        ("throttling", lambda: src.throttling(host)),
        ("load", lambda: src.load(host)),
        ("memory", lambda: src.memory(host)),
        ("disk", lambda: src.disk(host, config.data_dir)),
        ("data_mount", lambda: src.data_mount(host, config.data_dir)),
        ("mmc_errors", lambda: src.mmc_errors(host)),
        ("clock_synced", lambda: src.clock_synced(host)),
        ("boots", lambda: _boots(boots)),
        ("kiosk", lambda: kiosk_health(config, now, kiosk_watch)),
    )


def _boots(boots) -> dict:
    if boots is None:
        raise src.Unavailable("no boot log (the agent passes its BootLog)")
    return boots.summary()


def _gather(name: str, source, unavailable: dict):
    try:
        return source()
    except (src.Unavailable, AgentError) as exc:
        unavailable[name] = str(exc)
    except Exception as exc:  # noqa: BLE001 - a parser bug must cost one field, never the whole report
        unavailable[name] = f"internal error reading {name}: {type(exc).__name__}: {exc}"
    return None


def alerts(health: dict) -> list[str]:
    """Short codes for conditions a person should act on, worst first."""
    found = []
    throttled = health.get("throttling")
    if throttled:
        now = throttled["now"]
        found += [code for code, on in (
            ("under_voltage_now", now["under_voltage"]),
            # Sticky until reboot: a weak or lightning-damaged power supply shows here first.
            ("under_voltage_since_boot", throttled["since_boot"]["under_voltage"]),
            ("throttled_now", now["arm_freq_capped"] or now["throttled"] or now["soft_temp_limit"])) if on]
    found += [code for code, on in (
        ("data_readonly", (health.get("data_mount") or {}).get("readonly")),
        ("sd_errors", (health.get("mmc_errors") or {}).get("count")),
        ("disk_low", _below(_disk_free(health), DISK_LOW_PCT)),
        ("cpu_hot", _at_least(health.get("cpu_temp_c"), HOT_C)),
        ("unclean_boot", (health.get("boots") or {}).get("after_unclean")),
        ("clock_unsynced", health.get("clock_synced") is False)) if on]
    return found + _kiosk_alerts(health.get("kiosk"))


def _kiosk_alerts(state: dict | None) -> list[str]:
    if not state:
        return []
    process = (state.get("process") or {}).get("state")
    found = [f"kiosk_{process}"] if process in KIOSK_DOWN else []
    # A printer state the kiosk no longer keeps current is history, not an alert.
    if state.get("printer_current", True) and state.get("printer") not in QUIET_PRINTER_STATES:
        found.append(f"printer_{state.get('printer')}")
    return found + [code for code, on in (
        ("clock_suspect", (state.get("clock") or {}).get("suspect")),
        ("prints_owed", state.get("owed_prints")),
        ("prints_unconfirmed", state.get("unconfirmed_prints"))) if on]


def health_changed(old: dict | None, new: dict) -> bool:
    """Whether ``new`` differs from the last published ``old`` in a way worth publishing now.

    Facts: boot, throttling flags, the kiosk running or not, printer state, a new
    printer fault (even one already cleared), read-only data, clock sync, clock
    suspect, kiosk readable, and any alert appearing or clearing.
    Temperature and free disk count only when they cross their line (with
    hysteresis). Load, memory, counts and temperature jitter are routine drift.
    """
    if old is None:
        return True
    if _facts(old) != _facts(new):
        return True
    return (_band_changed(old.get("cpu_temp_c"), new.get("cpu_temp_c"),
                          lambda t: t >= HOT_C, lambda t: t < COOL_C)
            or _band_changed(_disk_free(old), _disk_free(new),
                             lambda p: p < DISK_LOW_PCT, lambda p: p >= DISK_OK_PCT))


def _facts(health: dict) -> tuple:
    state = health.get("kiosk")
    return (health.get("system_boot_id"), (health.get("throttling") or {}).get("raw"), health.get("clock_synced"),
            (health.get("data_mount") or {}).get("readonly"),
            None if state is None else (state.get("printer"), (state.get("clock") or {}).get("suspect"),
                                        (state.get("process") or {}).get("state"),
                                        state.get("last_printer_fault")),
            frozenset(health.get("alerts") or ()) - BANDED_ALERTS)


def _band_changed(old, new, bad, recovered) -> bool:
    # Compared with the last published value: once bad, only a clear recovery is news.
    if old is not None and bad(old):
        return new is None or recovered(new)
    return new is not None and bad(new)


def _disk_free(health: dict):
    return (health.get("disk") or {}).get("free_percent")


def _below(value, limit) -> bool:
    return value is not None and value < limit


def _at_least(value, limit) -> bool:
    return value is not None and value >= limit
