"""A stored announcement the agent cannot use (a corrupted or hand-edited row of agent.sqlite3) is
logged once and withdrawn on the broker ({"active": false}); the agent keeps running. The real agent,
its real store and a real Mosquitto (the fixtures of test_agent)."""
# ruff: noqa: F811 (test_agent's fixtures are imported by name and taken as arguments)

import logging
import os
import sqlite3
import threading

import pytest
from support.broker import Requester, base
from test_agent import agent, bodies, central, configs, kiosk, kiosk_clock  # noqa: F401 (fixtures)

from edge_agent.agent import Agent
from edge_agent.store import AgentStore, read_announcement

BASE = base()
GARBAGE = {
    "not JSON": b'{"text": "Tutup',
    "not an object": b'["Tutup"]',
    "no text": b'{"severity": "info"}',
}


def store_raw(data_dir: str, value: bytes) -> None:
    """As a hand edit would leave it (text, whatever its bytes): bypassing AgentStore's checks."""
    AgentStore(data_dir).close()  # its tables, as a first start of the agent makes them
    with sqlite3.connect(os.path.join(data_dir, "agent.sqlite3")) as db:
        db.execute("INSERT OR REPLACE INTO kv VALUES ('announcement', CAST(? AS TEXT))", (value,))
    db.close()


def announcements(watch) -> list[dict]:
    return [{k: v for k, v in b.items() if k not in ("boot_id", "seq", "at", "kiosk_id", "office_id")}
            for b in bodies(watch, f"{BASE}/announcement")]


def problems_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("stored announcement:")]


@pytest.mark.parametrize("value", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_broken_announcement_does_not_stop_the_agent_and_is_withdrawn(configs, kiosk, watch, value, caplog):
    store_raw(configs[1].data_dir, value)
    agent = Agent(*configs)
    failures = []
    runner = threading.Thread(target=lambda: _run(agent, failures))
    caplog.set_level(logging.INFO, logger="edge_agent")
    runner.start()
    try:
        watch.wait_for(lambda ms: any(m.topic == f"{BASE}/announcement" for m in ms) or failures,
                       what="the announcement state")
        for _ in range(3):  # the loop reads it every second: said once, not every time
            agent.expire_announcement()
    finally:
        agent.stop()
        runner.join(10)
    assert failures == []
    said = announcements(watch)
    assert said == [{"active": False}], said
    logged = problems_logged(caplog)
    assert len(logged) == len(set(logged)) >= 1 and "announcement" in logged[0], logged


def _run(agent, failures):
    try:
        agent.run()
    except Exception as exc:  # what a crash loop under systemd would be
        failures.append(exc)


def test_bytes_that_are_not_utf8_are_published_as_the_lobby_shows_them(agent, configs, watch):
    store_raw(configs[1].data_dir, b'{"text": "Tutup \xff\xfe", "severity": "warning"}')
    assert not agent.expire_announcement()
    agent.publish_announcement()
    watch.wait_for(lambda ms: announcements(watch), what="the announcement")
    shown = read_announcement(configs[1].data_dir)
    assert shown["text"].startswith("Tutup ") and announcements(watch) == [shown]


def test_a_repaired_announcement_is_published_as_the_lobby_shows_it(agent, configs, watch, caplog):
    store_raw(configs[1].data_dir,
              b'{"text": "Tutup", "severity": "loud", "until": 5, "maintenance_targets": "central"}')
    caplog.set_level(logging.INFO, logger="edge_agent")
    agent.expire_announcement()
    agent.expire_announcement()
    agent.publish_announcement()
    watch.wait_for(lambda ms: len(announcements(watch)) >= 2, what="the repaired announcement")
    assert announcements(watch) == [{"text": "Tutup", "severity": "info"}] * 2
    logged = problems_logged(caplog)
    assert len(logged) == 3, logged
    assert all(what in " ".join(logged) for what in ("'loud'", "until 5", "'central'")), logged


def test_an_announcement_broken_while_the_agent_runs_is_withdrawn_once(agent, configs, watch, caplog):
    store_raw(configs[1].data_dir, b'{"text": "Tutup", "severity": "info"}')
    agent.publish_announcement()
    caplog.set_level(logging.INFO, logger="edge_agent")
    store_raw(configs[1].data_dir, b"\x00garbage")
    for _ in range(3):
        agent.expire_announcement()
    watch.wait_for(lambda ms: len(announcements(watch)) >= 2, what="the withdrawal")
    assert announcements(watch) == [{"text": "Tutup", "severity": "info"}, {"active": False}]
    assert len(problems_logged(caplog)) == 1


def test_clear_announcement_clears_a_broken_one(agent, configs, broker, kiosk_clock):  # noqa: F811
    store_raw(configs[1].data_dir, b"not json at all")
    ask = Requester(broker, clock=kiosk_clock)
    try:
        answer = ask.ask("clear_announcement", {})
    finally:
        ask.close()
    assert answer["ok"] and answer["result"]["cleared"] is True, answer
    assert agent.store.announcement() == (None, [])
