"""The pieces of the MQTT link that need no broker: the envelope and Home Assistant discovery."""

import datetime as dt
import json
import threading
from zoneinfo import ZoneInfo

import pytest

from edge_agent.envelope import Envelope, encode, mark_historical, new_boot_id
from edge_agent.homeassistant import Component, Discovery

JAKARTA = ZoneInfo("Asia/Jakarta")


class FixedClock:
    def __init__(self, moment):
        self.moment = moment

    def now(self):
        return self.moment


def test_envelope_fields_come_first_and_seq_counts_from_one():
    clock = FixedClock(dt.datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=JAKARTA))
    env = Envelope("kiosk-1", "serang-kota", clock, boot_id="b00700000000cafe")
    first, second = env.wrap({"status": "paper_out"}), env.wrap({})
    assert list(first) == ["boot_id", "seq", "at", "kiosk_id", "office_id", "status"]
    assert first == {"boot_id": "b00700000000cafe", "seq": 1, "at": "2026-11-23T09:00:00.123+07:00",
                     "kiosk_id": "kiosk-1", "office_id": "serang-kota", "status": "paper_out"}
    assert second["seq"] == 2


def test_each_run_has_its_own_boot_id_and_its_own_seq():
    a, b = Envelope("k", "o"), Envelope("k", "o")
    assert a.boot_id != b.boot_id and len(new_boot_id()) == 16
    assert a.wrap({})["seq"] == b.wrap({})["seq"] == 1


def test_seq_is_unique_across_threads():
    env = Envelope("k", "o")
    seqs, lock = [], threading.Lock()

    def worker():
        for _ in range(500):
            seq = env.wrap({})["seq"]
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 2001))


def test_envelope_refuses_programmer_errors():
    env = Envelope("k", "o")
    with pytest.raises(ValueError, match="historical"):
        env.wrap({"historical": False})
    with pytest.raises(TypeError):
        env.wrap(["not", "a", "dict"])
    with pytest.raises(ValueError, match="UTC offset"):
        Envelope("k", "o", FixedClock(dt.datetime(2026, 11, 23, 9, 0))).wrap({})
    with pytest.raises(ValueError, match="kiosk_id"):
        Envelope("", "o")
    with pytest.raises(ValueError):
        encode({"x": float("inf")})


def test_historical_copy_and_encoding():
    message = {"seq": 1, "text": "Layanan ditutup"}
    marked = mark_historical(message)
    assert marked["historical"] is True and "historical" not in message
    assert encode({"a": "é"}) == '{"a":"é"}'.encode()
    assert json.loads(encode(marked)) == marked


BASE = "antrean/serang-kota/kiosk-1"


def test_discovery_payload_for_sensor_and_binary_sensor():
    discovery = Discovery(unique_id="serang-kota-kiosk-1", name="Kiosk 1", topic_base=BASE, sw_version="0.1.0",
                          components=[Component("Paper", "sensor", f"{BASE}/health", "{{ value_json.paper }}",
                                                unit="%", key="paper_level"),
                                      Component("Printer problem", "binary_sensor", f"{BASE}/health",
                                                "{{ value_json.problem }}", device_class="problem")])
    payload = discovery.payload()
    assert discovery.topic == "homeassistant/device/serang-kota-kiosk-1/config"
    assert set(payload) == {"dev", "o", "availability_topic", "payload_available", "payload_not_available", "qos",
                            "cmps"}
    assert payload["cmps"]["paper_level"] == {
        "p": "sensor", "name": "Paper", "unique_id": "serang-kota-kiosk-1_paper_level",
        "state_topic": f"{BASE}/health", "value_template": "{{ value_json.paper }}", "unit_of_measurement": "%"}
    assert payload["cmps"]["printer_problem"]["device_class"] == "problem"
    assert "unit_of_measurement" not in payload["cmps"]["printer_problem"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="switch"), "kind"),
    (dict(state_topic="antrean/+/health"), "wildcards"),
    (dict(key="bad key"), "key"),
    (dict(value_template=""), "required"),
])
def test_component_refuses_programmer_errors(kwargs, match):
    args = dict(name="Paper", kind="sensor", state_topic=f"{BASE}/health", value_template="{{ value_json.p }}")
    with pytest.raises(ValueError, match=match):
        Component(**(args | kwargs))


def test_discovery_refuses_bad_ids_and_duplicate_keys():
    paper = Component("Paper", "sensor", f"{BASE}/health", "{{ value_json.p }}")
    with pytest.raises(ValueError, match="unique_id"):
        Discovery(unique_id="kiosk 1", name="K", topic_base=BASE, components=[paper], sw_version="1")
    with pytest.raises(ValueError, match="paper"):
        Discovery(unique_id="k1", name="K", topic_base=BASE, components=[paper, paper], sw_version="1")
    with pytest.raises(ValueError, match="at least one"):
        Discovery(unique_id="k1", name="K", topic_base=BASE, components=[], sw_version="1")


def test_a_schema_body_goes_only_to_its_own_topic_and_is_stored_as_its_json(tmp_path):
    from edge_agent import schema
    from edge_agent.mqtt import MqttLink
    from edge_agent.outbox import Outbox

    outbox = Outbox(str(tmp_path / "outbox.sqlite3"))
    link = MqttLink(host="127.0.0.1", port=1, client_id="serang-kota-kiosk-1", username=None, password=None,
                    tls=None, keepalive_s=30, topic_base=BASE, outbox=outbox, dispatcher=None,
                    kiosk_id="kiosk-1", office_id="serang-kota")  # never started: nothing is sent
    with pytest.raises(ValueError, match="Announcement bodies go to 'announcement', not 'health'"):
        link.state("health", schema.Announcement.none(), change=True)
    with pytest.raises(ValueError, match="UncleanBoot bodies go to 'unclean_boot', not 'outage_started'"):
        link.event("outage_started", schema.UncleanBoot("0c5e7f3a", "boot 0c5e7f3a ended without a clean shutdown"))
    link.event("unclean_boot", schema.UncleanBoot("0c5e7f3a", "boot 0c5e7f3a ended without a clean shutdown"))
    (item,) = outbox.pending(10)
    assert (item.topic, item.kind) == (f"{BASE}/events/unclean_boot", schema.OutboxKind.EVENT)
    assert list(item.body)[5:] == ["previous_boot_id", "reason"] and item.body["seq"] == 1
    outbox.close()
