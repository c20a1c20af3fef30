"""The MQTT link against a real Mosquitto run with the shipped config and ACL (tests/support/broker.py)."""

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support import wait_until
from support.broker import Broker, Collector, Requester, base, client, make_link
from support.proxy import FaultProxy

from edge_agent.errors import AgentConfigError
from edge_agent.homeassistant import Component, Discovery
from edge_agent.mqtt import Tls

BASE = base()
EVENTS = f"{BASE}/events/#"


def body_of(message) -> dict:
    return json.loads(message.payload)


def user_properties(message) -> list:
    return list(getattr(message.properties, "UserProperty", []))


# ------------------------------------------------------------------ topics, status, envelope

def test_online_status_events_and_state_on_their_topics(broker, tmp_path):
    watch = Collector(broker, "technician", [f"{BASE}/#"])
    link = make_link(broker, tmp_path)
    link.start()
    assert link.wait_connected(10)
    watch.wait_for(lambda ms: any(m.topic == f"{BASE}/status" and m.payload == b"online" for m in ms))
    first = link.event("outage_started", {"target": "gateway", "since": "2026-11-23T09:00:00+07:00"})
    link.state("health", {"printer": "ok"}, change=True)
    link.state("network", {"gateway": "up"}, change=False)
    assert first is not None
    messages = watch.wait_for(lambda ms: any(m.topic == f"{BASE}/network" for m in ms))
    event = next(m for m in messages if m.topic == f"{BASE}/events/outage_started")
    body = body_of(event)
    assert event.qos == 1 and not event.retain
    assert body["target"] == "gateway" and body["kiosk_id"] == "kiosk-1" and body["office_id"] == "serang-kota"
    assert body["boot_id"] == link.boot_id and body["seq"] == 1 and "historical" not in body
    assert user_properties(event) == [] and event.properties.ContentType == "application/json"
    health, network = (body_of(next(m for m in messages if m.topic == f"{BASE}/{n}")) for n in ("health", "network"))
    assert (health["seq"], network["seq"]) == (2, 3)
    # A subscriber that comes later gets the retained status and states, not the event.
    late = Collector(broker, "homeassistant", [f"{BASE}/#"])
    retained = late.wait_for(lambda ms: len(ms) >= 3)
    assert {m.topic: m.retain for m in retained} == {f"{BASE}/status": True, f"{BASE}/health": True,
                                                     f"{BASE}/network": True}
    wait_until(lambda: link.stats["acked"] == 3, what="three PUBACKs")
    stats = link.stats
    assert (stats["sent"], stats["pending"], stats["refused"], stats["reconnects"]) == (3, 0, 0, 0)
    link.stop()
    late.wait_for(lambda ms: ms[-1].topic == f"{BASE}/status" and ms[-1].payload == b"offline")
    for c in (watch, late):
        c.close()


def test_names_are_checked_at_once(broker, tmp_path):
    link = make_link(broker, tmp_path)
    for bad in ("Outage", "out/age", "", "x" * 70, "events+"):
        with pytest.raises(ValueError):
            link.event(bad, {})
    for reserved in ("status", "cmd", "events", "reply"):
        with pytest.raises(ValueError, match="reserved"):
            link.state(reserved, {}, change=True)
    with pytest.raises(ValueError, match="envelope"):
        link.event("printer_fault", {"seq": 4})
    with pytest.raises(TypeError):
        link.state("health", {}, change="yes")
    assert link.stats["pending"] == 0


def test_messages_made_at_start_are_not_historical_when_the_first_connect_works(broker, tmp_path):
    """The agent makes its first messages before its first connect; they waited for nothing."""
    watch = Collector(broker, "technician", [EVENTS])
    link = make_link(broker, tmp_path)
    link.event("unclean_boot", {"n": 1})  # made before start: the first connect is still to come
    link.start()
    assert link.wait_connected(10)
    link.event("printer_fault", {"n": 2})  # made while connected
    first, second = watch.wait_for(lambda ms: len(ms) == 2)
    assert "historical" not in body_of(first) and user_properties(first) == []
    assert "historical" not in body_of(second) and user_properties(second) == []
    link.stop()
    watch.close()


def test_messages_made_while_the_broker_was_unreachable_are_marked_historical(broker, tmp_path):
    watch = Collector(broker, "technician", [EVENTS], persistent=True)
    broker.stop()
    link = make_link(broker, tmp_path)
    link.event("unclean_boot", {"n": 1})  # made at start, and the first connect fails
    link.start()
    wait_until(lambda: link.stats["connect_failures"] >= 1, what="a failed connect")
    link.event("printer_fault", {"n": 2})  # made while the broker is away
    broker.start()
    assert link.wait_connected(10)
    link.event("printer_fault", {"n": 3})  # made while connected
    messages = watch.wait_for(lambda ms: len(ms) == 3)
    assert [body_of(m).get("historical") for m in messages] == [True, True, None]
    assert [user_properties(m) for m in messages] == [[("historical", "1")]] * 2 + [[]]
    link.stop()
    watch.close()


def test_delivery_resumes_within_seconds_of_the_broker_coming_back_whatever_the_back_off(broker, tmp_path):
    """paho's back-off grew to 60 s while the broker was away, so delivery resumed up to a minute late.

    The back-off here is 10 s to 60 s: without the link's own retry while nothing answers at the
    port, the next attempt after a failed one is at least 20 s away."""
    link = make_link(broker, tmp_path, reconnect_min_s=10.0, reconnect_max_s=60.0)
    link.start()
    assert link.wait_connected(10)
    broker.stop()
    wait_until(lambda: "cannot reach" in (link.last_error or ""), timeout_s=30, what="a failed reconnect")
    broker.start()
    back = time.monotonic()
    assert link.wait_connected(5), f"not reconnected within 5 s of the broker's return: {link.stats}"
    print(f"reconnected {time.monotonic() - back:.2f} s after the broker listened again")
    link.stop()


# ------------------------------------------------------------------ Last Will, clean stop

AGENT = r"""
import json, sys
from edge_agent.commands import CommandDispatcher
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
cfg = json.loads(sys.argv[1])
link = MqttLink(host="127.0.0.1", port=cfg["port"], client_id=cfg["user"], username=cfg["user"],
                password=cfg["password"], tls=None, keepalive_s=30, topic_base=cfg["base"],
                outbox=Outbox(cfg["outbox"]), dispatcher=CommandDispatcher({}), kiosk_id="kiosk-1",
                office_id="serang-kota", reconnect_min_s=0.05, reconnect_max_s=0.3,
                max_in_flight=cfg.get("max_in_flight", 20))
for n in range(cfg.get("backlog", 0)):
    link.event("outage_started", {"n": n})
    link.state("health", {"n": n}, change=False)
link.start()
print("started", link.boot_id, flush=True)
if cfg.get("wait_connected"):
    print("connected" if link.wait_connected(10) else "not connected", flush=True)
sys.stdin.readline()
link.stop()
print(json.dumps(link.stats), flush=True)
"""


def spawn_agent(broker, tmp_path, **cfg):
    cfg = {"port": broker.port, "user": "serang-kota-kiosk-1", "password": broker.passwords["serang-kota-kiosk-1"],
           "base": BASE, "outbox": str(tmp_path / "agent.outbox.sqlite3"), **cfg}
    proc = subprocess.Popen([sys.executable, "-c", AGENT, json.dumps(cfg)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    started, boot_id = proc.stdout.readline().split()
    assert started == "started"
    if cfg.get("wait_connected"):
        assert proc.stdout.readline().strip() == "connected"
    return proc, boot_id


def end_agent(proc) -> dict:
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    stats = json.loads(proc.stdout.readline())
    assert proc.wait(10) == 0
    return stats


def test_last_will_says_offline_when_the_agent_is_killed(broker, tmp_path):
    watch = Collector(broker, "technician", [f"{BASE}/status"])
    proc, _ = spawn_agent(broker, tmp_path, wait_connected=True)
    watch.wait_for(lambda ms: ms and ms[-1].payload == b"online")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    watch.wait_for(lambda ms: ms[-1].payload == b"offline", what="the Last Will")
    late = Collector(broker, "homeassistant", [f"{BASE}/status"])
    (status,) = late.wait_for(lambda ms: len(ms) == 1)
    assert status.retain and status.payload == b"offline"
    for c in (watch, late):
        c.close()


def test_clean_stop_says_offline_itself(broker, tmp_path):
    watch = Collector(broker, "technician", [f"{BASE}/status"])
    proc, _ = spawn_agent(broker, tmp_path, wait_connected=True)
    watch.wait_for(lambda ms: ms and ms[-1].payload == b"online")
    end_agent(proc)
    watch.wait_for(lambda ms: ms[-1].payload == b"offline")
    assert "disconnected, not authorised" not in broker.log()
    # mosquitto logs a Will it sends as an abnormal disconnect ("closed its connection"); a clean stop is not one.
    assert "Client serang-kota-kiosk-1 closed its connection" not in broker.log()
    watch.close()


# ------------------------------------------------------------------ security: the shipped ACL

def connack(broker, user, password=None) -> mqtt.ReasonCode:
    got, done = [], threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user is not None:
        c.username_pw_set(user, password)
    c.on_connect = lambda cl, ud, flags, rc, props: (got.append(rc), done.set())
    c.connect(broker.host, broker.port)
    c.loop_start()
    assert done.wait(10)
    c.disconnect()
    c.loop_stop()
    return got[0]


def test_anonymous_and_wrong_password_are_refused(broker):
    assert connack(broker, None).getName() == "Not authorized"
    # Mosquitto 2.0.11 answers a wrong password with "Not authorized" too, not "Bad user name or password".
    assert connack(broker, "serang-kota-kiosk-1", "wrong").value in (134, 135)
    assert connack(broker, "serang-kota-kiosk-1", broker.passwords["serang-kota-kiosk-1"]).value == 0


def publish_as(broker, user, topic, payload=b"{}", properties=None) -> mqtt.ReasonCode:
    """Publish QoS 1 with ``user``'s credentials; returns the PUBACK reason code."""
    acks, done = [], threading.Event()
    c, up = client(broker, user)
    c.on_publish = lambda cl, ud, mid, rc, props: (acks.append(rc), done.set())
    assert up.wait(10)
    c.publish(topic, payload, qos=1, properties=properties)
    assert done.wait(10)
    c.disconnect()
    c.loop_stop()
    return acks[0]


@pytest.mark.parametrize("intruder, client_id", [
    ("serang-kota-kiosk-2", "serang-kota-kiosk-1"), ("technician", "serang-kota-kiosk-1"),
    ("homeassistant", "serang-kota-kiosk-1")])
def test_another_account_cannot_take_over_the_kiosks_client_id(broker, tmp_path, intruder, client_id):
    """Any account connecting with a kiosk's (predictable) client id took over its session: the
    broker kicked the kiosk off and published its "offline" Will, 5 flaps in 5 tries."""
    status = Collector(broker, "technician", [f"{BASE}/status", EVENTS])
    link = make_link(broker, tmp_path)
    link.start()
    assert link.wait_connected(10)
    for _ in range(5):
        c, up = client(broker, intruder, client_id=client_id)
        assert up.wait(10), f"{intruder} could not log in"
        c.disconnect()
        c.loop_stop()
    link.event("printer_fault", {"n": "after"})  # the broker handles connections in order: a Will comes first
    messages = status.wait_for(lambda ms: any(m.topic.startswith(f"{BASE}/events/") for m in ms))
    assert [m.payload for m in messages if m.topic == f"{BASE}/status"] == [b"online"]
    assert link.stats["reconnects"] == 0 and link.connected
    link.stop()
    status.close()


def test_a_kiosk_cannot_command_another_kiosk_or_itself(broker, tmp_path):
    calls = []
    link = make_link(broker, tmp_path, handlers={"resend": lambda args: calls.append(args) or {}})
    link.start()
    assert link.wait_connected(10)
    tech = Requester(broker)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = f"{BASE}/reply/intruder"
    props.CorrelationData = b"x"
    other = publish_as(broker, "serang-kota-kiosk-2", f"{BASE}/cmd/resend", properties=props)
    itself = publish_as(broker, "serang-kota-kiosk-1", f"{BASE}/cmd/resend", properties=props)
    assert other.getName() == itself.getName() == "Not authorized"
    # The kiosk's own account is the kiosk's client id (use_username_as_clientid): that login took its
    # session over, and the link came back.
    wait_until(lambda: link.stats["reconnects"] == 1 and link.wait_connected(0), what="the link back")
    assert tech.ask("resend", {})["ok"] is True  # the technician may; commands run in order
    assert calls == [{}], "a command from a kiosk account reached the handler"
    link.stop()
    tech.close()


def test_a_kiosk_cannot_read_another_kiosks_commands_or_write_its_topics(broker, tmp_path):
    spy = Collector(broker, "serang-kota-kiosk-2", [f"{BASE}/cmd/+", "antrean/serang-kota/kiosk-2/cmd/+"])
    tech = Requester(broker)
    tech.send("resend", {})  # to kiosk-1: kiosk-2 must not see it
    tech.send("resend", {}, topic="antrean/serang-kota/kiosk-2/cmd/resend")  # its own: it may
    (seen,) = spy.wait_for(lambda ms: len(ms) >= 1)
    assert seen.topic == "antrean/serang-kota/kiosk-2/cmd/resend"  # the broker delivers in order
    assert publish_as(broker, "serang-kota-kiosk-2", f"{BASE}/status", b"offline").getName() == "Not authorized"
    assert publish_as(broker, "serang-kota-kiosk-2", f"{BASE}/events/x").getName() == "Not authorized"
    assert publish_as(broker, "serang-kota-kiosk-2", "homeassistant/device/serang-kota-kiosk-1/config").is_failure
    assert publish_as(broker, "technician", f"{BASE}/health").getName() == "Not authorized"
    assert not publish_as(broker, "serang-kota-kiosk-2", "antrean/serang-kota/kiosk-2/health").is_failure
    spy.close()
    tech.close()


def test_a_message_the_broker_refuses_leaves_the_outbox_and_is_counted(broker, tmp_path):
    # Misconfigured: kiosk-2's account publishing under kiosk-1's base. Retrying would block the queue forever.
    link = make_link(broker, tmp_path, kiosk="kiosk-2", topic_base=BASE)
    link.event("printer_fault", {"status": "paper_out"})
    link.start()
    wait_until(lambda: link.stats["refused"] == 1, what="the refusal")
    assert link.stats["pending"] == 0 and "acl_file" in link.last_error
    link.stop()


# ------------------------------------------------------------------ Home Assistant

def test_home_assistant_discovery_on_connect_and_on_ha_birth(broker, tmp_path):
    discovery = Discovery(unique_id="serang-kota-kiosk-1", name="Kiosk 1 Serang Kota", topic_base=BASE,
                          sw_version="0.1.0", components=[
                              Component("Printer", "sensor", f"{BASE}/health", "{{ value_json.printer }}"),
                              Component("Gateway down", "binary_sensor", f"{BASE}/network",
                                        "{{ 'ON' if value_json.gateway == 'down' else 'OFF' }}",
                                        device_class="problem")])
    ha = Collector(broker, "homeassistant", ["homeassistant/device/+/config"])
    link = make_link(broker, tmp_path, discovery=discovery)
    link.start()
    assert link.wait_connected(10)
    (config,) = ha.wait_for(lambda ms: len(ms) == 1)
    payload = body_of(config)
    assert config.topic == "homeassistant/device/serang-kota-kiosk-1/config"
    assert payload["dev"]["ids"] == ["serang-kota-kiosk-1"] and payload["o"]["name"] == "antrean-edge-agent"
    assert payload["availability_topic"] == f"{BASE}/status"
    assert (payload["payload_available"], payload["payload_not_available"]) == ("online", "offline")
    assert payload["cmps"]["gateway_down"] == {
        "p": "binary_sensor", "name": "Gateway down", "unique_id": "serang-kota-kiosk-1_gateway_down",
        "state_topic": f"{BASE}/network", "device_class": "problem",
        "value_template": "{{ 'ON' if value_json.gateway == 'down' else 'OFF' }}"}
    assert publish_as(broker, "homeassistant", "homeassistant/status", b"online").value in (0, 16)
    ha.wait_for(lambda ms: len(ms) == 2, what="discovery re-sent after HA's birth message")
    link.stop()
    ha.close()


# ------------------------------------------------------------------ delivery: the outbox is the only queue

def test_in_flight_is_bounded_and_a_reconnect_resends_from_the_outbox_only(broker, tmp_path):
    """Twenty publishes vanish with a hung link; after the reconnect each message arrives exactly once.

    paho would re-send its own copies of the twenty after the reconnect and the
    outbox would send them again: duplicates that pile up in RAM over a flapping
    link. The link drops paho's copies, so each message arrives once.
    """
    watch = Collector(broker, "technician", [EVENTS])
    proxy = FaultProxy(broker.port)
    link = make_link(broker, tmp_path, port=proxy.port, max_in_flight=20)
    link.start()
    assert link.wait_connected(10)
    proxy.hold()
    for n in range(30):
        link.event("burst_alarm", {"n": n})
    wait_until(lambda: link.stats["sent"] == 20, what="twenty messages in flight")
    assert link.stats["in_flight"] == 20 and link.stats["pending"] == 30  # none left the outbox without a PUBACK
    proxy.cut()
    messages = watch.wait_for(lambda ms: len(ms) >= 30, what="all thirty after the reconnect")
    link.event("burst_alarm", {"n": "marker"})  # anything sent twice would arrive before this
    messages = watch.wait_for(lambda ms: body_of(ms[-1])["n"] == "marker")
    assert [body_of(m)["n"] for m in messages[:-1]] == list(range(30))
    assert all(body_of(m)["historical"] for m in messages[:30])  # they waited for a connection
    assert link.stats["reconnects"] == 1
    wait_until(lambda: link.stats["pending"] == 0, what="the outbox to empty")
    link.stop()
    proxy.close()
    watch.close()


def test_store_and_forward_across_broker_restart_and_agent_kill(broker, tmp_path):
    """Broker down, backlog queued, agent SIGKILLed mid-delivery, broker restarted, agent restarted."""
    watch = Collector(broker, "technician", [EVENTS, f"{BASE}/health"], persistent=True, client_id="sf-watch")
    broker.stop()
    # One message in flight: the backlog then takes long enough that the kill surely lands in the middle.
    first, first_boot = spawn_agent(broker, tmp_path, backlog=800, max_in_flight=1)
    outbox = sqlite3.connect(str(tmp_path / "agent.outbox.sqlite3"))
    made = {(b["boot_id"], b["seq"]): b for b in (json.loads(row[0]) for row in
                                                   outbox.execute("SELECT body FROM outbox ORDER BY id"))}
    assert len(made) == 1600
    broker.start()
    watch.wait_for(lambda ms: len(ms) >= 20, what="delivery to begin")
    first.send_signal(signal.SIGKILL)  # in the middle of its backlog
    first.wait()
    left = outbox.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert left > 0, "the backlog was delivered before the kill; make it longer"
    broker.stop()
    broker.start()
    second, second_boot = spawn_agent(broker, tmp_path)
    assert second_boot != first_boot
    arrived, looked_at = set(), [0]

    def all_arrived(ms):  # incremental: the predicate runs at every message
        for m in ms[looked_at[0]:]:
            arrived.add((body_of(m)["boot_id"], body_of(m)["seq"]))
        looked_at[0] = len(ms)
        return len(arrived) >= len(made)

    messages = watch.wait_for(all_arrived, timeout_s=30, what="every message at least once")
    assert end_agent(second)["pending"] == 0
    unique, seen = [], set()
    for m in messages:  # what a receiver does: dedupe by (boot_id, seq)
        body = body_of(m)
        key = (body["boot_id"], body["seq"])
        if key not in seen:
            seen.add(key)
            unique.append((m, body))
    assert seen == set(made)
    assert [b["seq"] for _, b in unique] == sorted(b["seq"] for _, b in unique), "not in order after dedupe"
    events = [(m, b) for m, b in unique if m.topic.startswith(f"{BASE}/events/")]
    assert [b["n"] for _, b in events] == list(range(800))
    for m, b in unique:
        original = made[(b["boot_id"], b["seq"])]
        assert b["at"] == original["at"] and b["boot_id"] == first_boot
        assert b["historical"] is True and ("historical", "1") in user_properties(m)
    watch.close()
    outbox.close()


def test_tls_listener_of_the_shipped_config(tmp_path):
    """The commented-out TLS block of mosquitto.conf, switched on, carries the kiosk's traffic."""
    tls_broker = Broker(tmp_path / "tls-broker", tls=True).start()
    try:
        watch = Collector(tls_broker, "technician", [EVENTS])
        link = make_link(tls_broker, tmp_path, port=tls_broker.tls_port, tls=Tls(ca_file=tls_broker.ca_file))
        link.start()
        assert link.wait_connected(10)
        link.event("printer_fault", {"status": "cover_open"})
        (event,) = watch.wait_for(lambda ms: len(ms) == 1)
        assert body_of(event)["status"] == "cover_open"
        link.stop()
        watch.close()
        assert f"on port {tls_broker.tls_port}" in tls_broker.log()
    finally:
        tls_broker.stop()


def test_unreadable_tls_files_are_a_config_error(broker, tmp_path):
    with pytest.raises(AgentConfigError, match="missing-ca.crt"):
        make_link(broker, tmp_path, tls=Tls(ca_file=str(tmp_path / "missing-ca.crt")))


def test_a_refused_login_is_reported_with_its_fix(broker, tmp_path):
    link = make_link(broker, tmp_path, password="not-the-password")
    link.event("unclean_boot", {})
    link.start()
    wait_until(lambda: link.last_error and "refused the connection" in link.last_error, what="the refusal")
    assert "password_file" in link.last_error and not link.connected
    assert link.stats["pending"] == 1  # the event waits in the outbox
    link.stop()


def test_a_message_over_the_brokers_packet_limit_is_refused_by_the_kiosk_not_resent_forever(broker, tmp_path):
    """max_packet_size (the shipped 65536) makes the broker disconnect a client that sends more: the
    link must not send such a message at all, or it would cut its connection at every try."""
    watch = Collector(broker, "technician", [EVENTS])
    link = make_link(broker, tmp_path)
    link.start()
    assert link.wait_connected(10)
    link.event("burst_alarm", {"n": "huge", "pad": "x" * 70_000})
    link.event("burst_alarm", {"n": "after"})
    (message,) = watch.wait_for(lambda ms: len(ms) == 1)
    assert body_of(message)["n"] == "after"
    wait_until(lambda: link.stats["pending"] == 0, what="the outbox to empty")
    assert link.stats["refused"] == 1 and link.stats["reconnects"] == 0
    assert "max_packet_size 65536" in link.last_error
    link.stop()
    watch.close()


def test_tls_to_a_plain_port_is_named_and_not_retried_every_second(tmp_path):
    """The port answers but the handshake fails: a config fault, so the link backs off as configured."""
    tls_broker = Broker(tmp_path / "tls-broker", tls=True).start()
    try:
        link = make_link(tls_broker, tmp_path, tls=Tls(ca_file=tls_broker.ca_file), reconnect_min_s=30.0,
                         reconnect_max_s=60.0)  # the plain port, with TLS
        link.start()
        wait_until(lambda: "answers but the connection failed" in (link.last_error or ""), what="the failure")
        assert "tls" in link.last_error and link.stats["connect_failures"] == 1
        link.stop()
    finally:
        tls_broker.stop()
