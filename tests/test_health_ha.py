"""What Home Assistant shows from the health payload, and printer faults too short for a routine reading.

HA renders each entity's value_template with Jinja2 against the JSON payload
(``value_json``); these tests do the same with Jinja2 on payloads the real
collect_health made. HA treats a rendered ``None`` as unknown, ignores an
empty string for a numeric sensor (it keeps the last value), and needs
``state_class`` to keep long-term statistics.
"""

import datetime as dt
import json
import threading
import time

import jinja2
import pytest
from support import wait_until
from support.broker import Collector, base
from support.config import toml
from support.liveness import kiosk_alive
from test_health import LAPTOP, pi_health

from edge_agent import config as aconfig
from edge_agent import ha_components
from edge_agent.agent import MIN_CHANGE_GAP_S, Agent
from edge_agent.health import collect_health
from edge_agent.homeassistant import Discovery
from kiosk.app import build_kiosk
from kiosk.ledger import Ledger
from kiosk.seam import PrinterStatus

BASE = base()
JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)  # a template that reaches for a missing key fails


@pytest.fixture
def cfg(make_config):
    return make_config()


def rendered(cfg, health: dict) -> dict:
    """Each health entity's state as HA gets it: name -> the rendered text."""
    value_json = json.loads(json.dumps(health))
    return {c.name: JINJA.from_string(c.value_template).render(value_json=value_json)
            for c in ha_components.components(cfg, BASE) if c.state_topic.endswith("/health")}


def test_missing_sources_are_unknown_never_off_or_stale(cfg):
    health = collect_health(cfg, root=LAPTOP, run=lambda argv, timeout: "",
                            statvfs=lambda path: (_ for _ in ()).throw(FileNotFoundError(path)))
    assert health["throttling"] is None and health["kiosk"] is None and health["disk"] is None
    shown = rendered(cfg, health)
    for name in ("Paper near end", "Under-voltage now", "Under-voltage since boot", "Clock suspect",
                 "Kiosk running"):
        assert shown[name] == "None", (name, shown[name])  # unknown, not OFF ("no problem")
    for name in ("Data disk free", "CPU temperature", "Unclean boots", "Kiosk", "Printer", "Last printer fault",
                 "A Perekaman e-KTP remaining today"):
        assert shown[name] == "None", (name, shown[name])  # "" would leave HA showing the last value


def test_a_pi_with_a_running_kiosk_renders_values(cfg):
    ledger = Ledger(cfg.ledger_path, cfg.office_id, cfg.tz)
    try:
        ledger.set_state("printer", "paper_near_end", dt.datetime.now(cfg.tz))
        with kiosk_alive(cfg.data_dir):
            shown = rendered(cfg, pi_health(cfg))
    finally:
        ledger.close()
    assert (shown["Kiosk"], shown["Kiosk running"], shown["Printer"]) == ("running", "ON", "paper_near_end")
    assert (shown["Paper near end"], shown["Under-voltage now"], shown["Clock suspect"]) == ("ON", "ON", "OFF")
    assert float(shown["Data disk free"]) == 30.0 and float(shown["CPU temperature"]) > 0
    assert int(shown["A Perekaman e-KTP remaining today"]) in (0, 3)  # 0 after last_ticket_at


def test_a_dead_kiosk_shows_no_current_printer_state(cfg):
    ledger = Ledger(cfg.ledger_path, cfg.office_id, cfg.tz)
    try:
        ledger.set_state("printer", "ok", dt.datetime.now(cfg.tz))
        shown = rendered(cfg, pi_health(cfg))  # nothing holds the lock: no kiosk runs
    finally:
        ledger.close()
    assert (shown["Kiosk"], shown["Kiosk running"]) == ("not_running", "OFF")
    assert shown["Printer"] == "None" and shown["Paper near end"] == "None"


def test_numeric_sensors_keep_history(cfg):
    payload = Discovery(unique_id="serang-kota-kiosk-1", name="Antrean", topic_base=BASE,
                        components=ha_components.components(cfg, BASE), sw_version="test").payload()["cmps"]
    assert payload["cpu_temperature"]["state_class"] == "measurement"
    assert payload["data_disk_free"]["state_class"] == "measurement"
    assert payload["remaining_a"]["state_class"] == "measurement"
    assert payload["unclean_boots"]["state_class"] == "total_increasing"
    assert "state_class" not in payload["printer"]  # a word, not a number
    assert payload["last_printer_fault"]["device_class"] == "timestamp"


# ---------------------------------------------------------------- a short printer fault, through the agent

def test_a_printer_fault_shorter_than_the_health_interval_reaches_health(make_config, broker, tmp_path):
    cfg = make_config(toml({"mqtt": broker.mqtt_config(tmp_path / "mqtt.secret")}))
    agent_cfg = aconfig.from_kiosk_config(cfg, {})
    assert agent_cfg.agent["health_interval_s"] == 60
    watch = Collector(broker, "technician", [f"{BASE}/health"])
    kiosk = build_kiosk(cfg)
    with kiosk_alive(cfg.data_dir):
        kiosk.start()
        agent = Agent(cfg, agent_cfg)
        runner = threading.Thread(target=agent.run)
        runner.start()
        try:
            watch.wait_for(lambda ms: bool(ms), what="the first health")
            started = time.monotonic()
            kiosk.printer.state = PrinterStatus.PAPER_OUT  # a roll changed in a hurry: out, then back
            wait_until(lambda: kiosk.printer_status is PrinterStatus.PAPER_OUT, 5, what="the kiosk seeing paper out")
            kiosk.printer.state = PrinterStatus.OK
            wait_until(lambda: kiosk.printer_status is PrinterStatus.OK, 5, what="the kiosk seeing the paper back")

            def fault_shown(ms):
                last = json.loads(ms[-1].payload)["kiosk"]
                return (last.get("last_printer_fault") or {}).get("cleared_at") is not None

            messages = watch.wait_for(fault_shown, MIN_CHANGE_GAP_S + 3, what="health with the printer fault")
            assert time.monotonic() - started < MIN_CHANGE_GAP_S + 3  # not the 60 s routine reading
            health = json.loads(messages[-1].payload)
            assert health["kiosk"]["last_printer_fault"]["status"] == "paper_out"
            shown = rendered(cfg, health)
            assert shown["Printer"] == "ok" and shown["Last printer fault"] == \
                health["kiosk"]["last_printer_fault"]["at"]
        finally:
            agent.stop()
            runner.join(10)
            kiosk.stop()
            watch.close()
