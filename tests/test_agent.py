"""The whole agent against a real Mosquitto and a real kiosk ledger: the wiring of everything.

The probes hit a TCP listener on loopback that the test opens and closes
(the "central" server), the kiosk is a real Kiosk with the dummy printer in
the same data directory, and technicians speak MQTT v5 request/response.
"""

import datetime as dt
import json
import os
import re
import signal
import socket
import threading
from pathlib import Path

import pytest
from support import FakeSystemClock, at, wait_until
from support.broker import Collector, Requester, base
from support.config import kiosk_config, toml, write
from support.kiosk_process import start_agent

from edge_agent import config as aconfig
from edge_agent import schema
from edge_agent.agent import Agent
from edge_agent.boots import BootLog
from edge_agent.store import read_announcement
from kiosk.printer.decode import decode
from kiosk.seam import PrinterStatus

BASE = base()
FAST_AGENT = {"probe_interval_s": 1, "fail_threshold": 2, "success_threshold": 1}


class Central:
    """The central server the e-KTP service needs: a loopback listener we can switch off."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def down(self):
        self.sock.close()

    def up(self):
        self.sock = socket.create_server(("127.0.0.1", self.port))


@pytest.fixture
def central():
    c = Central()
    yield c
    c.sock.close()


@pytest.fixture
def configs(make_config, broker, central, tmp_path):
    text = toml({"agent": FAST_AGENT, "mqtt": broker.mqtt_config(tmp_path / "mqtt.secret"),
                 "targets": [{"name": "central", "kind": "tcp", "role": "central", "host": "127.0.0.1",
                              "port": central.port, "timeout_ms": 500}]})
    kiosk = make_config(text, replace={'button = "GPIO17"': 'button = "GPIO17"\nneeds_targets = ["central"]'})
    return kiosk, aconfig.from_kiosk_config(kiosk, {})


@pytest.fixture
def kiosk_clock():
    return FakeSystemClock(at("2026-11-23 09:00"))


@pytest.fixture
def kiosk(configs, kiosk_clock, kiosks):
    return kiosks(configs[0], worker=True, system_clock=kiosk_clock, monotonic=kiosk_clock.monotonic)


@pytest.fixture
def agent(configs, kiosk, kiosk_clock):
    a = Agent(*configs, clock=kiosk_clock)  # one clock for the kiosk, the agent and the technician
    a.link.start()
    assert a.link.wait_connected(10)
    yield a
    a.close()


@pytest.fixture
def home_assistant(broker):
    c = Collector(broker, "homeassistant", ["homeassistant/device/#"])
    yield c
    c.close()


def bodies(watch, topic):
    return [json.loads(p) for p in watch.payloads(topic)]


def test_run_publishes_status_health_network_and_discovery(configs, kiosk, watch, home_assistant):
    agent = Agent(*configs)
    runner = threading.Thread(target=agent.run)
    runner.start()
    try:
        watch.wait_for(lambda ms: {f"{BASE}/health", f"{BASE}/network"} <= {m.topic for m in ms})
        home_assistant.wait_for(lambda ms: bool(ms))
        assert watch.payloads(f"{BASE}/status")[-1] == b"online"
        health = bodies(watch, f"{BASE}/health")[-1]
        assert health["kiosk"]["printer"] == "ok" and health["boot_id"] and health["seq"] >= 1
        assert bodies(watch, f"{BASE}/network")[-1]["targets"]["central"]["role"] == "central"
        discovery = json.loads(home_assistant.payloads("homeassistant/device/serang-kota-kiosk-1/config")[-1])
        assert discovery["availability_topic"] == f"{BASE}/status" and "remaining_a" in discovery["cmps"]
    finally:
        agent.stop()
        runner.join(10)
    watch.wait_for(lambda ms: ms[-1].topic == f"{BASE}/status" and ms[-1].payload == b"offline")


def test_outage_started_and_ended_with_cause_and_stopped_service(agent, central, watch):
    agent.network_round()
    central.down()
    for _ in range(2):
        agent.network_round()
    started = watch.wait_for(lambda ms: any(m.topic == f"{BASE}/events/outage_started" for m in ms))
    event = json.loads(next(m.payload for m in started if m.topic.endswith("outage_started")))
    assert (event["target"], event["cause"]["code"], event["stopped_services"]) == ("central", "central", ["A"])
    central.up()
    agent.network_round()
    watch.wait_for(lambda ms: any(m.topic == f"{BASE}/events/outage_ended" for m in ms))
    assert [r["target"] for r in agent.outages.history()] == ["central"]


def test_kiosk_printer_fault_is_relayed_with_the_kiosk_time(agent, kiosk, watch):
    agent.relay_kiosk_events()  # the first look sets the cursor: history is not news
    kiosk.printer.state = PrinterStatus.PAPER_OUT
    kiosk.drain()
    wait_until(lambda: kiosk.printer_status is PrinterStatus.PAPER_OUT, what="the kiosk seeing paper out")
    wait_until(lambda: agent.relay_kiosk_events() == 0 and watch.payloads(f"{BASE}/events/printer_fault"),
               what="the relay")
    event = bodies(watch, f"{BASE}/events/printer_fault")[-1]
    assert (event["status"], event["fault"]) == ("paper_out", True)
    assert event["kiosk_at"].startswith("2026-11-23T09:00")


def test_announce_with_maintenance_reaches_the_lobby_store(agent, configs, watch, broker, kiosk_clock):
    ask = Requester(broker, clock=kiosk_clock)
    until = (at("2026-11-23 09:00") + dt.timedelta(hours=2)).isoformat(timespec="seconds")
    answer = ask.ask("announce", {"text": "Pemeliharaan jaringan pusat", "severity": "warning", "until": until,
                                  "maintenance_targets": ["central"]})
    assert answer["ok"], answer
    assert read_announcement(configs[1].data_dir)["text"] == "Pemeliharaan jaringan pusat"
    assert agent.monitor.snapshot()["central"]["state"] == "maintenance"
    bad = ask.ask("announce", {"text": "x" * 1000, "severity": "warning"})
    assert not bad["ok"] and read_announcement(configs[1].data_dir)["text"] == "Pemeliharaan jaringan pusat"
    assert ask.ask("clear_announcement", {})["ok"]
    assert read_announcement(configs[1].data_dir) is None
    ask.close()


def test_set_quota_never_below_issued(agent, kiosk, broker, kiosk_clock):
    for _ in range(2):
        kiosk.handle_press("A")
    ask = Requester(broker, clock=kiosk_clock)
    refused = ask.ask("set_quota", {"service": "A", "date": "2026-11-23", "quota": 1})
    assert not refused["ok"] and "set 2 or more" in refused["error"]["message"]
    assert kiosk.ledger.quota(kiosk.config.service("A"), at("2026-11-23 09:00").date()) == 3
    done = ask.ask("set_quota", {"service": "A", "date": "2026-11-23", "quota": 2})
    assert done["ok"] and done["result"]["taken"] == 2
    assert kiosk.ledger.quota(kiosk.config.service("A"), at("2026-11-23 09:00").date()) == 2
    ask.close()


def test_test_print_goes_through_the_running_kiosk(agent, kiosk, broker, kiosk_clock):
    ask = Requester(broker, clock=kiosk_clock)
    answer = ask.ask("test_print", {}, timeout_s=20)
    assert answer["ok"] and answer["result"]["ok"] is True, answer
    assert "TES PRINTER" in decode(kiosk.printer.output)[-1].text()
    assert kiosk.ledger.taken("A", at("2026-11-23 09:00").date()) == 0
    ask.close()


def test_a_technician_confirms_a_clock_leap_through_the_running_kiosk(agent, kiosk, kiosk_clock, broker):
    kiosk.handle_press("A")
    kiosk_clock.set(at("2027-11-23 09:00"))
    wait_until(lambda: kiosk.ledger.state()["clock"]["suspect"], what="the kiosk reporting its clock suspect")
    assert "365 days ahead" in kiosk.ledger.state()["clock"]["reason"]
    ask = Requester(broker, clock=kiosk_clock)  # the technician's clock agrees with the kiosk's system clock
    answer = ask.ask("confirm_clock", {}, timeout_s=20)
    assert answer["ok"] and "365 days ahead" in answer["result"]["was"], answer
    assert answer["result"]["now"].startswith("2027-11-23T09:00")
    assert kiosk.snapshot()["clock"]["suspect"] is False
    assert kiosk.handle_press("A").ticket.service_day == dt.date(2027, 11, 23)
    ask.close()


def test_last_will_when_the_agent_process_is_killed(configs, kiosk, broker, watch, tmp_path):
    config_file = write_config(configs, tmp_path)
    agent = start_agent(config_file)
    try:
        watch.wait_for(lambda ms: watch.payloads(f"{BASE}/status")[-1:] == [b"online"], what="online")
        agent.signal(signal.SIGKILL)
        agent.proc.wait(10)
        watch.wait_for(lambda ms: watch.payloads(f"{BASE}/status")[-1:] == [b"offline"], what="the Last Will")
    finally:
        agent.kill()


def write_config(configs, tmp_path):
    """The same settings as a file, for the agent as a real process."""
    kiosk, cfg = configs
    mqtt, target = cfg.mqtt, cfg.targets[0]
    services = [{"code": "A", "name": "Perekaman e-KTP", "needs_targets": ["central"]}]
    doc = kiosk_config(kiosk.data_dir, services, kiosk_id=kiosk.id, office={"id": kiosk.office_id,
                                                                          "name": kiosk.office_name},
                       printer={"backend": "dummy"},
                       mqtt={"port": mqtt["port"], "password_file": mqtt["password_file"], "keepalive_s": 5},
                       targets=[{"name": "central", "kind": "tcp", "role": "central", "host": "127.0.0.1",
                                 "port": target["port"]}])
    return write(tmp_path / "kiosk.toml", doc)


class StateLink:
    """The agent's link seen from outside: what it was asked to publish, and whether as a change."""

    def __init__(self):
        self.states = []

    def state(self, name, body, change):
        self.states.append((name, schema.body_fields(body), change))

    def event(self, kind, body):
        self.states.append((f"events/{kind}", schema.body_fields(body), True))

    def start(self):
        pass

    def stop(self):
        pass


def test_a_health_change_soon_after_another_goes_out_as_a_change_after_the_gap(configs, monkeypatch):
    from edge_agent import agent as agent_module

    now = [1000.0]
    monkeypatch.setattr(agent_module.time, "monotonic", lambda: now[0])
    link = StateLink()
    a = Agent(*configs, link=link)

    def reading(v, change, after_s):
        now[0] += after_s
        a.publish_state("health", {"v": v}, change=change, min_gap_s=agent_module.MIN_CHANGE_GAP_S)

    try:
        reading(1, True, 0)
        reading(2, True, 5)  # under-voltage flapping: held back...
        reading(2, False, 60)  # ...and owed: the next reading says it as a change
        reading(2, False, 60)
    finally:
        a.close()
    assert [(body["v"], change) for _, body, change in link.states] == [(1, True), (2, True)]


def test_a_recovery_is_judged_against_what_was_published_not_the_last_reading(configs, monkeypatch):
    """81 °C is hot; 77 and 76 are not yet cool (hysteresis); 74 is: that reading is a change."""
    from edge_agent import agent as agent_module

    reading = agent_module.device_health.collect_health(configs[0])  # a whole body: the schema checks it
    readings = iter({**reading, "cpu_temp_c": t} for t in (81.0, 77.0, 76.0, 74.0))
    monkeypatch.setattr(agent_module.device_health, "collect_health", lambda *a, **k: next(readings))
    now = [1000.0]
    monkeypatch.setattr(agent_module.time, "monotonic", lambda: now[0])
    link = StateLink()
    a = Agent(*configs, link=link)
    try:
        for _ in range(4):
            a.health()
            now[0] += 60
    finally:
        a.close()
    assert [(body["cpu_temp_c"], change) for _, body, change in link.states] == [(81.0, True), (74.0, True)]


def test_maintenance_ends_a_down_targets_outage_out_loud_and_needs_an_end(configs, central):
    import time

    from edge_agent.errors import CommandError
    from edge_agent.handlers import Handlers

    link = StateLink()
    a = Agent(*configs, link=link)
    try:
        central.down()
        for _ in range(3):  # fail_threshold = 2
            a.network_round()
        a.set_maintenance(["central"], time.time() + 3600, "pemeliharaan")
        with pytest.raises(CommandError, match="need \"until\""):
            Handlers(a).announce({"text": "x", "severity": "info", "maintenance_targets": ["central"]})
    finally:
        a.close()
    events = [name for name, _, _ in link.states if name.startswith("events/outage")]
    assert events == ["events/outage_started", "events/outage_ended"]


# ------------------------------------------------------------------ issue 12: commands checked against this kiosk

@pytest.mark.parametrize("day, why", [
    ("2026-11-20", "in the past"), ("0001-01-01", "in the past"), ("9999-12-31", "beyond the booking horizon"),
    ("2026-11-28", "not one of the office's open weekdays"), ("2026-12-25", "holiday"),
    ("2026-12-01", "beyond the booking horizon")])
def test_set_quota_only_for_a_day_that_can_be_booked(agent, kiosk, broker, kiosk_clock, day, why):
    """Quotas for years 0001 and 9999, past days and holidays were accepted silently."""
    ask = Requester(broker, clock=kiosk_clock)
    answer = ask.ask("set_quota", {"service": "A", "date": day, "quota": 50})
    assert answer["error"]["code"] == "bad_value" and why in answer["error"]["message"], answer
    assert day in answer["error"]["message"]
    assert [e for e in kiosk.ledger.events_since(0, 1000) if e["kind"] == "quota_set"] == []
    assert ask.ask("set_quota", {"service": "A", "date": "2026-11-27", "quota": 50})["ok"]  # the horizon's last day
    ask.close()


def test_a_bad_announcement_is_refused_whole_and_nothing_is_shown(agent, configs, broker, kiosk_clock):
    """An end in year 9999 made the lobby answer 500 until cleared; a lone surrogate answered
    `internal` yet the announcement was stored and shown."""
    ask = Requester(broker, clock=kiosk_clock)
    sent_at = at("2026-11-23 09:00").isoformat()
    cases = [{"text": "Tutup", "severity": "info", "until": "9999-12-31T23:59:59+07:00"},
             {"text": "Tutup", "severity": "info", "until": "2026-11-24T09:00:00+07:00",
              "maintenance_targets": ["central", "nowhere"]}]
    for payload in cases:
        answer = ask.ask("announce", payload)
        assert answer["error"]["code"] == "bad_value", answer
    surrogate = ('{"sent_at": "%s", "text": "Tutup \\ud800", "severity": "info"}' % sent_at).encode()
    answer = ask.ask("announce", surrogate)
    assert answer["error"]["code"] == "bad_value" and "U+D800" in answer["error"]["message"], answer
    assert read_announcement(configs[1].data_dir) is None
    assert agent.monitor.snapshot()["central"]["state"] != "maintenance"
    ask.close()


# ------------------------------------------------------------------ issue 12: restarts

def body_of(message) -> dict:
    return json.loads(message.payload)


def test_an_outage_open_at_restart_ends_on_mqtt_with_its_real_start(configs, kiosk, central, watch):
    first = Agent(*configs)
    first.link.start()
    assert first.link.wait_connected(10)
    central.down()
    for _ in range(3):  # fail_threshold = 2
        first.network_round()
    watch.wait_for(lambda ms: any(m.topic == f"{BASE}/events/outage_started" for m in ms))
    started = first.outages.open_periods()[0]["start"]
    first.close()
    for still_down in (True, False):
        if not still_down:
            central.up()
        later = Agent(*configs)  # starts with every target "unknown"
        later.link.start()
        try:
            assert later.link.wait_connected(10)
            for _ in range(2 if still_down else 1):
                later.network_round()
            kind = "outage_started" if still_down else "outage_ended"
            messages = watch.wait_for(lambda ms: any(body_of(m)["boot_id"] == later.link.boot_id
                                                     for m in ms if m.topic.endswith(kind)), what=kind)
        finally:
            later.close()
        said = [json.loads(m.payload) for m in messages if m.topic == f"{BASE}/events/{kind}"][-1]
        assert (said["target"], said["from"], said["started_at"]) == ("central", "unknown", started), said
    events = [m.topic.rsplit("/", 1)[1] for m in watch.messages if "/events/outage" in m.topic]
    assert events == ["outage_started", "outage_started", "outage_ended"]


def test_an_expired_announcement_is_not_published_again_at_start(configs, kiosk, watch, broker):
    from edge_agent.store import AgentStore

    store = AgentStore(configs[1].data_dir)  # left by an earlier run: it ended an hour ago
    store.put("announcement", {"text": "Tutup sampai 12:00", "severity": "info",
                               "until": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat(),
                               "announced_at": "2026-11-23T08:00:00+07:00"})
    store.close()
    agent = Agent(*configs)
    runner = threading.Thread(target=agent.run)
    runner.start()
    try:
        watch.wait_for(lambda ms: any(m.topic == f"{BASE}/announcement" for m in ms))
    finally:
        agent.stop()
        runner.join(10)
    published = bodies(watch, f"{BASE}/announcement")
    assert [b.get("active") for b in published] == [False], published
    assert read_announcement(configs[1].data_dir) is None
    late = Collector(broker, "homeassistant", [f"{BASE}/announcement"])  # what the broker keeps retained
    (kept,) = late.wait_for(lambda ms: len(ms) == 1)
    assert json.loads(kept.payload)["active"] is False
    late.close()


def test_an_announcement_expires_while_the_agent_runs(configs, kiosk, watch, broker, kiosk_clock):
    agent = Agent(*configs, clock=kiosk_clock)
    runner = threading.Thread(target=agent.run)
    runner.start()
    try:
        assert agent.link.wait_connected(10)
        ask = Requester(broker, clock=kiosk_clock)
        until = (at("2026-11-23 09:00") + dt.timedelta(hours=1)).isoformat()
        assert ask.ask("announce", {"text": "Tutup", "severity": "info", "until": until})["ok"]
        ask.close()
        kiosk_clock.advance(dt.timedelta(hours=1, seconds=1))
        watch.wait_for(lambda ms: [b.get("active") for b in bodies(watch, f"{BASE}/announcement")][-1:] == [False],
                       what="the announcement withdrawn")
    finally:
        agent.stop()
        runner.join(10)
    assert read_announcement(configs[1].data_dir) is None


def test_outages_command_prints_office_time_and_the_reason(configs, central, tmp_path, capsys):
    from edge_agent import cli

    a = Agent(*configs, link=StateLink())
    try:
        central.down()
        for _ in range(3):
            a.network_round()
        start = dt.datetime.fromisoformat(a.outages.open_periods()[0]["start"])
    finally:
        a.close()
    assert cli.main(["--config", str(write_config(configs, tmp_path)), "outages"]) == 0
    out = capsys.readouterr().out
    assert "times in WIB" in out
    assert start.astimezone(configs[0].tz).strftime("%Y-%m-%d %H:%M") in out
    assert "2 failed rounds in a row" in out and "central network" in out


# ------------------------------------------------------------------ issue 13: the schema reads all the agent sends

def after_a_power_cut(data_dir: str) -> None:
    """The boot log holds an earlier boot that never shut down cleanly."""
    os.makedirs(data_dir, exist_ok=True)
    boots = BootLog(data_dir)
    boots.start(boot_id="0c5e7f3a-boot-before")
    boots.close()


def test_the_unclean_boot_event_says_which_boot_ended_without_a_clean_shutdown(configs):
    after_a_power_cut(configs[1].data_dir)
    link = StateLink()
    agent = Agent(*configs, link=link)
    runner = threading.Thread(target=agent.run)
    runner.start()
    try:
        wait_until(lambda: any(name == "events/unclean_boot" for name, _, _ in link.states), what="unclean_boot")
    finally:
        agent.stop()
        runner.join(10)
    said = next(body for name, body, _ in link.states if name == "events/unclean_boot")
    assert said == {"previous_boot_id": "0c5e7f3a-boot-before",
                    "reason": "boot 0c5e7f3a-boot-before ended without a clean shutdown"}


class ButtonPanel:
    """A button source that has lost its link, as kiosk/buttons/panel.py reports it."""

    connected, last_error = False, "no heartbeat for 3.0 s"

    def set_led(self, code, mode):
        pass

    def close(self):
        pass


# The body keys of each topic, in order, as the agent sent them before edge_agent.schema (captured at d7599c1).
BODY_KEYS = json.loads((Path(__file__).parent / "golden" / "mqtt_body_keys.json").read_text())


def golden_topic(topic: str) -> str:
    """``topic`` as mqtt_body_keys.json names it: under the kiosk's base, ids as placeholders."""
    if topic.startswith("homeassistant/device/"):
        return "homeassistant/device/<id>/config"
    return re.sub(r"^reply/.*", "reply/<technician>", topic.removeprefix(f"{BASE}/"))


def reads_back_byte_for_byte(topic: str, payload: bytes) -> schema.Message:
    """Parse a captured message with edge_agent.schema and check that it says exactly what was sent,
    with its keys in the order receivers have always got them."""
    message = schema.parse(topic, payload)
    if payload.startswith(b"{"):
        keys = [k for k in json.loads(payload) if k not in schema.ENVELOPE_KEYS]
        assert keys in BODY_KEYS[golden_topic(topic)], (topic, keys)
    if message.envelope is not None:
        assert schema.dump(schema.wire_dict(message.envelope, message.body)) == payload, topic
    elif isinstance(message.body, schema.DiscoveryConfig):
        assert message.body.to_json() == payload, topic
    else:
        assert message.body.value.encode() == payload, topic
    return message


def test_every_message_a_running_agent_sends_parses_with_the_schema(configs, kiosk, kiosk_clock, central, broker,
                                                                    watch, home_assistant):
    after_a_power_cut(configs[1].data_dir)
    agent = Agent(*configs, clock=kiosk_clock)
    runner = threading.Thread(target=agent.run)
    runner.start()
    ask = Requester(broker, clock=kiosk_clock)

    def seen(*suffixes):
        watch.wait_for(lambda ms: {f"{BASE}/{s}" for s in suffixes} <= {m.topic for m in ms}, what=str(suffixes))

    try:
        seen("status", "health", "network", "announcement", "events/unclean_boot")
        home_assistant.wait_for(lambda ms: bool(ms))
        central.down()
        seen("events/outage_started")
        central.up()
        seen("events/outage_ended")
        while kiosk.handle_press("A").ticket is not None:  # days fill up, then the whole horizon
            pass
        seen("events/quota_exhausted", "events/burst_alarm")
        kiosk.printer.state = PrinterStatus.PAPER_OUT
        kiosk.buttons = ButtonPanel()
        seen("events/printer_fault", "events/button_panel")
        until = (at("2026-11-23 09:00") + dt.timedelta(hours=2)).isoformat(timespec="seconds")
        assert ask.ask("announce", {"text": "Pemeliharaan", "severity": "warning", "until": until,
                                    "maintenance_targets": ["central"]})["ok"]
        assert not ask.ask("announce", {"text": "x" * 1000, "severity": "warning"})["ok"]
        assert ask.ask("clear_announcement", {})["ok"]
        kiosk_clock.set(at("2027-11-23 09:00"))
        seen("events/clock_suspect")
        ask.clock = kiosk_clock
        assert ask.ask("confirm_clock", {}, timeout_s=20)["ok"]
        seen("events/clock_confirmed")
    finally:
        ask.close()
        agent.stop()
        runner.join(10)
    watch.wait_for(lambda ms: ms[-1].payload == b"offline", what="offline")
    sent = [m for m in watch.messages + home_assistant.messages if "/cmd/" not in m.topic]  # all but requests
    messages = [reads_back_byte_for_byte(m.topic, m.payload) for m in sent]
    bodies = {type(m.body) for m in messages}
    assert {schema.LinkStatus, schema.Health, schema.Network, schema.Announcement, schema.UncleanBoot,
            schema.OutageStarted, schema.OutageEnded, schema.DayFull, schema.HorizonFull, schema.BurstAlarm,
            schema.PrinterFault, schema.ButtonPanel, schema.ClockSuspect, schema.ClockConfirmed, schema.Reply,
            schema.DiscoveryConfig} <= bodies
    assert schema.UnknownEvent not in bodies
    replies = [m.body for m in messages if isinstance(m.body, schema.Reply)]
    assert [r.ok for r in replies] == [True, False, True, True] and replies[1].error.code == "bad_value"


def test_kiosk_process_events_parse_with_the_schema(configs, watch):
    from support.liveness import kiosk_alive

    agent = Agent(*configs)
    agent.link.start()
    try:
        assert agent.link.wait_connected(10)
        with kiosk_alive(configs[0].data_dir):
            agent.watch_kiosk()
        agent.watch_kiosk()  # it crashed
        watch.wait_for(lambda ms: any(m.topic == f"{BASE}/events/kiosk_process" for m in ms), what="the crash")
    finally:
        agent.close()
    crash = reads_back_byte_for_byte(f"{BASE}/events/kiosk_process", watch.payloads(f"{BASE}/events/kiosk_process")[0])
    assert (crash.body.state, crash.body.was, crash.body.fault) == (schema.ProcessState.NOT_RUNNING,
                                                                   schema.ProcessState.RUNNING, True)
