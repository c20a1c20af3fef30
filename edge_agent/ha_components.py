"""Which Home Assistant entities a kiosk shows, read from its retained health and network topics.

Every template renders ``None`` when its source is missing from the payload
(``null``: not a Pi, no ledger, the kiosk not running): Home Assistant shows
that as *unknown*. A binary sensor must never fall back to OFF ("no problem")
for lack of data, and a numeric sensor must never render an empty string,
which HA ignores, keeping the last value as if it were current.
"""

from edge_agent.homeassistant import Component, Discovery
from kiosk.seam import __version__


def _on(source: str, expression: str) -> str:
    """ON or OFF from ``expression`` when ``source`` is in the payload, else None (unknown)."""
    return "{{ (('ON' if (" + expression + ") else 'OFF') if (" + source + ") else None) }}"


def _value(source: str, expression: str) -> str:
    return "{{ ((" + expression + ") if (" + source + ") else None) }}"


KIOSK = "value_json.kiosk"
KIOSK_CURRENT = "value_json.kiosk and value_json.kiosk.printer_current"  # the printer's state is current


def components(kiosk, base: str) -> list[Component]:
    health, network = f"{base}/health", f"{base}/network"
    found = [
        Component("Kiosk", "sensor", health, _value(KIOSK, "value_json.kiosk.process.state")),
        Component("Kiosk running", "binary_sensor", health,
                  _on(KIOSK, "value_json.kiosk.process.state == 'running'"), device_class="running"),
        Component("Printer", "sensor", health, _value(KIOSK_CURRENT, "value_json.kiosk.printer")),
        Component("Last printer fault", "sensor", health,
                  _value("value_json.kiosk and value_json.kiosk.last_printer_fault",
                         "value_json.kiosk.last_printer_fault.at"), device_class="timestamp"),
        Component("Paper near end", "binary_sensor", health,
                  _on(KIOSK_CURRENT, "value_json.kiosk.paper_warning"), device_class="problem"),
        Component("Under-voltage now", "binary_sensor", health,
                  _on("value_json.throttling", "value_json.throttling.now.under_voltage"), device_class="problem"),
        Component("Under-voltage since boot", "binary_sensor", health,
                  _on("value_json.throttling", "value_json.throttling.since_boot.under_voltage"),
                  device_class="problem"),
        Component("CPU temperature", "sensor", health, _value("value_json.cpu_temp_c is not none",
                                                              "value_json.cpu_temp_c"),
                  "°C", "temperature", state_class="measurement"),
        Component("Data disk free", "sensor", health, _value("value_json.disk", "value_json.disk.free_percent"), "%",
                  state_class="measurement"),
        Component("Clock suspect", "binary_sensor", health,
                  _on(KIOSK, "value_json.kiosk.clock.suspect"), device_class="problem"),
        Component("Unclean boots", "sensor", health, _value("value_json.boots", "value_json.boots.unclean_total"),
                  state_class="total_increasing"),
        Component("Office network", "sensor", network, "{{ value_json.verdict.status }}"),
        Component("Likely cause", "sensor", network,
                  "{{ value_json.verdict.cause.text if value_json.verdict.cause else 'none' }}"),
    ]
    for i, service in enumerate(kiosk.services):
        found.append(Component(f"{service.code} {service.name} remaining today", "sensor", health,
                               _value(KIOSK, f"value_json.kiosk.services[{i}].remaining_today"),
                               key=f"remaining_{service.code.lower()}", state_class="measurement"))
    return found


def discovery(kiosk, config) -> Discovery | None:
    if not config.mqtt["ha_discovery"]:
        return None
    unique = f"{kiosk.office_id}-{kiosk.id}"
    return Discovery(unique_id=unique, name=f"Antrean {kiosk.office_name} {kiosk.id}", topic_base=config.topic_base,
                     components=components(kiosk, config.topic_base), sw_version=__version__,
                     prefix=config.mqtt["ha_prefix"])
