"""The office's uplink: a real site broker bridged over TLS to a real regional broker.

The site broker runs hardware/mosquitto/mosquitto.conf with
bridge.conf.example appended (only the address, the CA file, the password
and the reconnect delay replaced); the regional broker runs with
regional-acl.example. A kiosk's MQTT link speaks to the site broker, a
regional technician to the regional one.
"""

import itertools
import json
import re

import pytest
from support import wait_until
from support.broker import (
    CONF_TEMPLATE,
    EXAMPLE_OFFICE,
    Broker,
    Collector,
    Requester,
    base,
    broker_acl,
    copies,
    make_link,
)
from test_mqtt import publish_as

from edge_agent.outbox import Outbox

HW_MOSQUITTO = CONF_TEMPLATE.parent
STATE = f"antrean/{EXAMPLE_OFFICE}/bridge/state"
OTHER_OFFICE = "lebak"


class RegionalBroker(Broker):
    """The shipped broker config with TLS on, but the regional accounts and regional-acl.example."""

    def __init__(self, workdir):
        super().__init__(workdir, kiosks=(), tls=True)
        acl = (HW_MOSQUITTO / "regional-acl.example").read_text()
        office_block = acl[acl.index(f"user bridge-{EXAMPLE_OFFICE}"):acl.index("user technician")]
        acl += "\n" + office_block.replace(EXAMPLE_OFFICE, OTHER_OFFICE)
        (self.workdir / "acl").write_text(broker_acl(acl, kiosks=(), shared=("technician",)))
        self.passwords = {user: f"pw-{user}" for user in
                          (f"bridge-{EXAMPLE_OFFICE}", f"bridge-{OTHER_OFFICE}", *copies("technician"))}
        self._next_copy = {"technician": itertools.cycle(copies("technician"))}
        self._write_passwords()


def site_with_bridge(workdir, regional: RegionalBroker) -> Broker:
    site = Broker(workdir)
    bridge = (HW_MOSQUITTO / "bridge.conf.example").read_text()
    replaced = {"regional.example.go.id:8883": f"127.0.0.1:{regional.tls_port}",
                "/etc/mosquitto/certs/regional-ca.crt": regional.ca_file,
                "CHANGE-ME-generate-with-openssl-rand-base64-24": regional.passwords[f"bridge-{EXAMPLE_OFFICE}"],
                # the shipped 10 s first retry, backing off to 120 s, would only make the test slow
                "restart_timeout 10 120": "restart_timeout 1 2"}
    for old, new in replaced.items():
        assert old in bridge, f"bridge.conf.example no longer has {old!r}"
        bridge = bridge.replace(old, new)
    site.conf.write_text(site.conf.read_text() + bridge)
    return site


@pytest.fixture
def uplink(tmp_path):
    regional = RegionalBroker(tmp_path / "regional").start()
    site = site_with_bridge(tmp_path / "site", regional).start()
    yield site, regional
    site.kill()
    regional.kill()


def last_state(messages) -> bytes | None:
    seen = [m.payload for m in messages if m.topic == STATE]
    return seen[-1] if seen else None


def test_the_bridge_says_it_is_up_on_both_brokers(uplink):
    site, regional = uplink
    for broker in (site, regional):
        watch = Collector(broker, "technician", [STATE])
        watch.wait_for(lambda ms: last_state(ms) == b"1", what=f"bridge state 1 on {broker.workdir.name}")
        watch.close()
    assert re.search(r"Connecting bridge .*\(127\.0\.0\.1:\d+\)", site.log())


def test_events_go_up_and_commands_come_down_with_their_answers(uplink, tmp_path):
    site, regional = uplink
    technician = Collector(regional, "technician", [f"{base()}/#"])
    wait_for_bridge(regional)
    link = make_link(site, tmp_path, handlers={"resend": lambda args: {"queued": True}})
    link.start()
    assert link.wait_connected(10)
    link.event("printer_fault", {"status": "paper_out"})
    (event,) = technician.wait_for(lambda ms: any("/events/" in m.topic for m in ms),
                                   what="the kiosk's event at the regional broker")[-1:]
    assert json.loads(event.payload)["status"] == "paper_out"
    ask = Requester(regional)  # MQTT v5 request/response across the bridge: correlation and reply topic kept
    answer = ask.ask("resend", {}, timeout_s=15)
    assert answer["ok"] and answer["result"] == {"queued": True}, answer
    ask.close()
    link.stop()
    technician.close()


def test_a_day_without_the_uplink_loses_nothing(uplink, tmp_path):
    """Regional broker gone; the kiosk goes on publishing; the site broker restarts meanwhile."""
    site, regional = uplink
    technician = Collector(regional, "technician", [f"{base()}/events/#"], persistent=True, client_id="regional-tech")
    wait_for_bridge(regional)
    local = Collector(site, "technician", [STATE])
    regional.stop()
    local.wait_for(lambda ms: last_state(ms) == b"0", what="bridge state 0 on the site broker")
    outbox = Outbox(str(tmp_path / "outbox.sqlite3"))
    link = make_link(site, tmp_path, outbox=outbox)
    link.start()
    assert link.wait_connected(10)
    sent = 300
    for n in range(sent):
        link.event("ticket_issued", {"n": n})
    wait_until(lambda: outbox.count() == 0, 20, "the site broker taking every event")
    link.stop()
    site.stop()  # a clean restart of the site broker: its bridge queue is on disk
    site.start()
    regional.start()
    got = technician.wait_for(lambda ms: len({json.loads(m.payload)["n"] for m in ms}) >= sent, timeout_s=30,
                              what="every event queued during the outage")
    assert sorted({json.loads(m.payload)["n"] for m in got}) == list(range(sent))
    local.wait_for(lambda ms: last_state(ms) == b"1", what="bridge state 1 again")
    technician.close()
    local.close()


def test_an_office_bridge_can_write_only_its_own_office_and_no_commands(uplink):
    _, regional = uplink
    own = f"bridge-{EXAMPLE_OFFICE}"
    assert not publish_as(regional, own, f"{base()}/status", b"online").is_failure
    assert publish_as(regional, own, f"{base(OTHER_OFFICE)}/status", b"online").value == 135
    assert publish_as(regional, own, f"{base()}/cmd/resend", b"{}").value == 135
    assert not publish_as(regional, "technician", f"{base()}/cmd/resend", b"{}").is_failure


def test_the_remote_hears_the_bridge_die_with_the_site(tmp_path):
    regional = RegionalBroker(tmp_path / "regional").start()
    site = site_with_bridge(tmp_path / "site", regional).start()
    try:
        watch = Collector(regional, "technician", [STATE])
        watch.wait_for(lambda ms: last_state(ms) == b"1", what="bridge state 1")
        site.kill()  # power cut at the office: the regional broker sends the bridge's Will
        watch.wait_for(lambda ms: last_state(ms) == b"0", timeout_s=120, what="bridge state 0 (Will)")
        watch.close()
    finally:
        site.kill()
        regional.kill()


def wait_for_bridge(regional) -> None:
    watch = Collector(regional, "technician", [STATE])
    watch.wait_for(lambda ms: last_state(ms) == b"1", what="the bridge connected")
    watch.close()



def test_a_retained_command_never_runs_however_often_the_bridge_reconnects(uplink, tmp_path):
    """A test print published retained on the regional broker ran again at every bridge reconnect.

    At each reconnect the bridge subscribes again and the regional broker sends it the retained
    command, retain flag kept (the bridge forwards it as published): the kiosk must see the flag
    and refuse, every time, with an answer that says how to clear it."""
    site, regional = uplink
    wait_for_bridge(regional)
    prints = []
    link = make_link(site, tmp_path, handlers={"test_print": lambda args: prints.append(args) or {"ok": True}})
    link.start()
    assert link.wait_connected(10)
    bridge = Collector(site, "technician", [STATE])
    replies = Collector(site, "technician", [f"{base()}/reply/#"])
    ask = Requester(regional)
    ask.send("test_print", {}, retain=True)
    replies.wait_for(lambda ms: len(ms) == 1, timeout_s=15, what="the refusal of the retained command")
    for reconnect in (1, 2):
        regional.stop()  # SIGTERM: the retained command is saved with the regional broker's database
        bridge.wait_for(lambda ms: last_state(ms) == b"0", what="the bridge down")
        regional.start()
        replies.wait_for(lambda ms: len(ms) == 1 + reconnect, timeout_s=30,
                         what=f"the replayed command refused after reconnect {reconnect}")
    answers = [json.loads(m.payload) for m in replies.messages]
    assert [a.get("error", {}).get("code") for a in answers] == ["retained"] * 3, answers
    assert prints == [], "a retained command ran"
    link.stop()
    for c in (ask, bridge, replies):
        c.close()
