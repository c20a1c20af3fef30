"""The kiosk as everything else sees it: code outside ``kiosk/`` imports from the kiosk only through this.

The agent, the lobby, headquarters and tests of them import these names (``from kiosk.seam import
LedgerReader``) and nothing else of the kiosk, so the kiosk's insides can change behind them.

What a reader may do:

- **read** the ledger through ``LedgerReader`` (``open_reader``), opened read-only: counts, tickets
  (``/verify``), the kiosk's state, and its events after a cursor, typed (``KioskEvent`` holding one
  payload class per ``EventKind``; a kind this software does not know comes as ``UnknownEvent``);
- **write** only through ``RequestsClient`` (``open_requests``): a day's quota (``set_quota``), and
  requests the running kiosk answers, a reprint, a test print, a clock confirmation. Those are
  the only writes readers make to the ledger; the kiosk alone issues, prints and records state;
- read the kiosk's liveness (``Watch``, ``read_liveness``) and status (``read_status``), its
  configuration (``load_config``), booking days, and verify a ticket's QR signature.

States are ``str`` enums whose values are the strings in the ledger's SQL and JSON. JSON is made and
parsed only at the boundary (the ledger's ``events.data``, MQTT bodies): see ``kiosk.seam.events``.

Names are loaded on first use: the kiosk's own modules import the enums and payloads from
``kiosk.seam.states`` and ``kiosk.seam.events``, which import nothing else of the kiosk, so importing
one of those (say, from ``kiosk.ledger``) must not pull in the ledger while it is half loaded. A
receiver that only parses events (``EventKind``, the payloads) loads no more than those two modules.
"""

import importlib

_SOURCES = {
    "kiosk": ("__version__",),
    "kiosk.config": ("Config", "Service", "Calendar"),
    "kiosk.errors": ("ConfigError", "KioskError", "LedgerError", "QuotaError", "TicketNotFound"),
    "kiosk.ticket": ("Ticket",),
    "kiosk.liveness": ("Liveness", "Reading", "Watch", "read_liveness", "PROC_LOCKS"),
    "kiosk.status": ("read_status",),
    "kiosk.state": ("service_status",),
    "kiosk.clock": ("SafeClock", "ledger_clock"),
    "kiosk.servicedays": ("booking_days", "is_service_day"),
    "kiosk.signing": ("KEY_BYTES", "KEY_FILE", "SignatureError", "verify_payload"),
    "kiosk.seam.states": ("TicketStatus", "PrinterStatus", "PressKind", "ClockVerdict", "ClockOutcome",
                          "RequestKind"),
    "kiosk.seam.events": ("EventKind", "STAFF_KINDS", "EventPayload", "KioskEvent", "UnknownEvent", "Payload",
                          "PAYLOADS", "parse_payload", "TicketIssued", "DayFull", "HorizonFull", "PrintFailed",
                          "BurstAlarm", "PrinterState", "ClockSuspect", "ClockConfirmed", "ButtonsState",
                          "RequestDone", "RequestExpired", "QuotaSet", "TicketVoid", "ReprintRequested"),
    "kiosk.seam.reader": ("LedgerReader", "open_reader"),
    "kiosk.seam.requests": ("RequestsClient", "open_requests"),
}
# Renamed on the way out: the seam's name, and where it is.
_RENAMED = {"load_config": ("kiosk.config", "load")}
_WHERE = {name: (module, name) for module, names in _SOURCES.items() for name in names} | _RENAMED

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    try:
        module, attribute = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'kiosk.seam' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return __all__

