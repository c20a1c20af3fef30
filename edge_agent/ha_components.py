"""Which Home Assistant entities a kiosk shows, read from its retained health and network topics."""

from edge_agent.homeassistant import Component, Discovery
from kiosk import __version__


def _on(expression: str) -> str:
    return "{{ 'ON' if (" + expression + ") else 'OFF' }}"


def components(kiosk, base: str) -> list[Component]:
    health, network = f"{base}/health", f"{base}/network"
    found = [
        Component("Printer", "sensor", health, "{{ value_json.kiosk.printer if value_json.kiosk else 'unknown' }}"),
        Component("Paper near end", "binary_sensor", health,
                  _on("value_json.kiosk and value_json.kiosk.paper_warning"), device_class="problem"),
        Component("Under-voltage now", "binary_sensor", health,
                  _on("value_json.throttling and value_json.throttling.now.under_voltage"), device_class="problem"),
        Component("Under-voltage since boot", "binary_sensor", health,
                  _on("value_json.throttling and value_json.throttling.since_boot.under_voltage"),
                  device_class="problem"),
        Component("CPU temperature", "sensor", health, "{{ value_json.cpu_temp_c }}", "°C", "temperature"),
        Component("Data disk free", "sensor", health, "{{ value_json.disk.free_percent if value_json.disk }}", "%"),
        Component("Clock suspect", "binary_sensor", health,
                  _on("value_json.kiosk and value_json.kiosk.clock.suspect"), device_class="problem"),
        Component("Unclean boots", "sensor", health, "{{ value_json.boots.unclean_total if value_json.boots }}"),
        Component("Office network", "sensor", network, "{{ value_json.verdict.status }}"),
        Component("Likely cause", "sensor", network,
                  "{{ value_json.verdict.cause.text if value_json.verdict.cause else 'none' }}"),
    ]
    for i, service in enumerate(kiosk.services):
        found.append(Component(f"{service.code} {service.name} remaining today", "sensor", health,
                               "{{ value_json.kiosk.services[" + str(i) + "].remaining_today "
                               "if value_json.kiosk else None }}", key=f"remaining_{service.code.lower()}"))
    return found


def discovery(kiosk, config) -> Discovery | None:
    if not config.mqtt["ha_discovery"]:
        return None
    unique = f"{kiosk.office_id}-{kiosk.id}"
    return Discovery(unique_id=unique, name=f"Antrean {kiosk.office_name} {kiosk.id}", topic_base=config.topic_base,
                     components=components(kiosk, config.topic_base), sw_version=__version__,
                     prefix=config.mqtt["ha_prefix"])
