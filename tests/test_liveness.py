"""Is the kiosk alive? Real `kiosk run` processes, killed (SIGKILL), frozen (SIGSTOP) and stopped (SIGTERM),
watched by `kiosk status`, the agent on a real Mosquitto and the lobby's /api/status."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import wait_until
from support.broker import base
from support.config import process_config, toml, write
from support.kiosk_process import start_kiosk
from support.liveness import kiosk_alive

from edge_agent import config as aconfig
from edge_agent.agent import MIN_CHANGE_GAP_S, Agent
from kiosk import config as kconfig
from kiosk import lock
from kiosk.liveness import HEARTBEAT_FILE, Liveness, Watch, lock_holder, read_liveness
from lobby import create_app

REPO = str(Path(__file__).resolve().parents[1])
STALE_S = 3  # heartbeat_stale_s in these tests: the smallest the config allows
BASE = base()


@pytest.fixture
def config_path(tmp_path):
    return write(tmp_path / "kiosk.toml", {**process_config(tmp_path, 5), "heartbeat_stale_s": STALE_S})


@pytest.fixture
def cfg(config_path):
    return kconfig.load(str(config_path), env={})


@pytest.fixture
def running(config_path):
    k = start_kiosk(config_path)
    yield k
    if k.alive:
        k.kill()


def kiosk_status(config_path) -> tuple[dict, str]:
    def run(*extra):
        done = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(config_path), *extra],
                              capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        return done.stdout
    return json.loads(run("--json")), run()


def wait_for_state(cfg, state: Liveness, timeout_s: float) -> float:
    """Seconds until one-shot readings say ``state`` (polled: the heartbeat's age has no event to wait on)."""
    started = time.monotonic()
    wait_until(lambda: read_liveness(cfg.data_dir, cfg.heartbeat_stale_s).state is state, timeout_s,
               what=f"the kiosk reading {state.value}")
    return time.monotonic() - started


# ------------------------------------------------------------------ kiosk status

def test_status_says_running_then_not_running_after_sigkill(running, config_path):
    status, text = kiosk_status(config_path)
    assert status["process"]["state"] == "running" and status["printer_current"] is True
    assert f"pid {running.proc.pid}" in status["process"]["detail"]
    assert "kiosk: running" in text and "printer: ok\n" in text
    running.kill()
    status, text = kiosk_status(config_path)  # at once: the kernel dropped the lock with the process
    process = status["process"]
    assert (process["state"], process["ended"], status["printer_current"]) == ("not_running", "crashed", False)
    assert status["printer"] == "ok"  # the ledger's last known state, and said to be only that:
    assert "kiosk: NOT RUNNING: the kiosk ended without stopping" in text
    assert "printer: ok (last known at " in text and "not current: the kiosk is not running" in text


def test_a_frozen_kiosk_goes_hung_within_the_limit_and_back(running, cfg, config_path):
    assert read_liveness(cfg.data_dir, STALE_S).state is Liveness.RUNNING
    running.signal(signal.SIGSTOP)
    took = wait_for_state(cfg, Liveness.HUNG, STALE_S + 5)
    # The last beat was at most a second before the freeze, so never before STALE_S - 1 s.
    assert STALE_S - 1.5 <= took <= STALE_S + 2, took
    status, text = kiosk_status(config_path)
    assert status["process"]["state"] == "hung" and status["printer_current"] is False
    assert "kiosk: HUNG: the kiosk process" in text and f"(limit {STALE_S} s)" in text
    running.signal(signal.SIGCONT)
    assert wait_for_state(cfg, Liveness.RUNNING, 5) < 2.5


def test_a_clean_stop_says_stopped(running, cfg, config_path):
    running.signal(signal.SIGTERM)
    assert running.proc.wait(30) == 0
    status, text = kiosk_status(config_path)
    assert (status["process"]["state"], status["process"]["ended"]) == ("not_running", "stopped")
    assert "kiosk: NOT RUNNING: the kiosk was stopped" in text


def test_a_staff_command_holding_the_lock_is_not_a_running_kiosk(running, cfg):
    running.kill()
    held = lock.hold(cfg.data_dir)  # as `kiosk reprint` does while no kiosk runs
    try:
        assert lock_holder(cfg.data_dir) == os.getpid()
        reading = read_liveness(cfg.data_dir, STALE_S)
        assert reading.state is Liveness.NOT_RUNNING and "a staff command" in reading.detail
    finally:
        lock.release(held)


def test_a_clock_step_is_not_taken_for_a_hang(tmp_path):
    """NTP steps the clock of a Pi without a real-time clock at boot; the kiosk's heartbeat looks hours old."""
    step = {"s": 0.0}
    watch = Watch(str(tmp_path), STALE_S, clock=lambda: time.time() + step["s"])
    with kiosk_alive(str(tmp_path)):
        assert watch.read().state is Liveness.RUNNING
        step["s"] = 3 * 3600.0
        first = os.stat(tmp_path / HEARTBEAT_FILE).st_mtime
        wait_until(lambda: os.stat(tmp_path / HEARTBEAT_FILE).st_mtime != first, 5, what="a beat")
        assert watch.read().state is Liveness.RUNNING  # the watch saw the heartbeat move
        one_look = read_liveness(str(tmp_path), STALE_S, clock=lambda: time.time() + step["s"])
        assert one_look.state is Liveness.HUNG  # a single look has only the wall clock to go by


def test_without_proc_locks_the_heartbeat_alone_decides_and_says_so(tmp_path):
    watch = Watch(str(tmp_path), STALE_S, locks_path=str(tmp_path / "no-such-locks"))
    with kiosk_alive(str(tmp_path)) as heartbeat:
        reading = watch.read()
        assert reading.state is Liveness.RUNNING and "cannot read" in reading.detail
        heartbeat.stopped()
        reading = watch.read()
    assert (reading.state, reading.ended) == (Liveness.NOT_RUNNING, "stopped")
    assert "cannot be told from a hung one" in reading.detail


def test_a_reader_without_access_to_data_dir_says_why_and_does_not_crash(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to run the reader as another user (setpriv)")
    data = tmp_path / "data"
    with kiosk_alive(str(data)):
        os.chmod(data, 0o000)  # a lobby running as another user without access
        try:
            reading = subprocess.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                 "import sys; from kiosk.liveness import read_liveness; r = read_liveness(sys.argv[1], 3); "
                 "print(r.state.value, '|', r.detail)", str(data)],
                capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": REPO})
        finally:
            os.chmod(data, 0o755)
    assert reading.returncode == 0, reading.stderr
    assert reading.stdout.startswith("not_running |") and "give this user access to data_dir" in reading.stdout


def test_a_kiosk_that_never_ran_is_not_running(tmp_path):
    reading = read_liveness(str(tmp_path), STALE_S)
    assert (reading.state, reading.ended) == (Liveness.NOT_RUNNING, None)
    assert "has not run" in reading.detail


# ------------------------------------------------------------------ the agent, over MQTT

@pytest.fixture
def agent(broker, config_path, tmp_path):
    with open(config_path, "a") as f:
        f.write(toml({"mqtt": broker.mqtt_config(tmp_path / "mqtt.secret")}))
    kiosk_cfg = kconfig.load(str(config_path), env={})
    a = Agent(kiosk_cfg, aconfig.from_kiosk_config(kiosk_cfg, {}))
    runner = threading.Thread(target=a.run)
    runner.start()
    yield a
    a.stop()
    runner.join(10)


def events(watch, kind="kiosk_process") -> list[dict]:
    return [json.loads(p) for p in watch.payloads(f"{BASE}/events/{kind}")]


def last_health(watch) -> dict:
    payloads = watch.payloads(f"{BASE}/health")
    return json.loads(payloads[-1]) if payloads else {}


def health_says(watch, state: str) -> bool:
    kiosk = last_health(watch).get("kiosk") or {}
    return (kiosk.get("process") or {}).get("state") == state


def test_agent_reports_a_killed_and_a_frozen_kiosk(config_path, running, agent, watch):
    k = running  # started before the agent, as systemd would
    try:
        watch.wait_for(lambda ms: health_says(watch, "running"), what="health with the kiosk running")
        k.kill()
        killed = time.monotonic()
        watch.wait_for(lambda ms: events(watch) and events(watch)[-1]["state"] == "not_running", STALE_S,
                       what="the kiosk_process event")
        assert time.monotonic() - killed < STALE_S
        # Health is a retained state: a change within MIN_CHANGE_GAP_S of the previous one waits for the gap.
        watch.wait_for(lambda ms: health_says(watch, "not_running"), MIN_CHANGE_GAP_S + 2,
                       what="health saying not running")
        event = events(watch)[-1]
        assert (event["state"], event["was"], event["ended"], event["fault"]) == \
            ("not_running", "running", "crashed", True)
        health = last_health(watch)
        assert "kiosk_not_running" in health["alerts"] and health["kiosk"]["printer_current"] is False
        assert not [a for a in health["alerts"] if a.startswith("printer_")]

        k = start_kiosk(config_path)  # systemd restarts it
        watch.wait_for(lambda ms: events(watch)[-1]["state"] == "running", 10, what="the running event")
        assert events(watch)[-1]["was"] == "not_running" and events(watch)[-1]["fault"] is False
        k.signal(signal.SIGSTOP)
        watch.wait_for(lambda ms: events(watch)[-1]["state"] == "hung", STALE_S + 3, what="the hung event")
        watch.wait_for(lambda ms: health_says(watch, "hung"), MIN_CHANGE_GAP_S + 2, what="health saying hung")
        assert "kiosk_hung" in last_health(watch)["alerts"]
    finally:
        k.kill()


# ------------------------------------------------------------------ the lobby

def test_lobby_stops_promising_tickets_when_the_kiosk_dies(running, cfg):
    client = create_app({"KIOSK": cfg, "SECRET_KEY": "test", "TESTING": True}).test_client()
    status = client.get("/api/status").get_json()
    assert status["kiosk"]["down"] is False and [s["state"] for s in status["services"]] == ["available"] * 2
    running.kill()
    killed = time.monotonic()
    status = client.get("/api/status").get_json()
    assert time.monotonic() - killed < STALE_S
    assert status["kiosk"]["state"] == "not_running"
    assert status["kiosk"]["text_id"] == "Mesin antrean sedang tidak berfungsi, silakan hubungi petugas."
    for service in status["services"]:
        assert service["state"] == "kiosk_down" and "hubungi petugas" in service["text_id"]
        assert "Tersedia" not in service["text_id"]
    assert client.get("/healthz").get_json()["kiosk"] == "not_running"
    page = client.get("/").get_data(as_text=True)
    assert 'id="kiosk-down"' in page


def test_lobby_says_a_frozen_kiosk_cannot_issue(running, cfg):
    client = create_app({"KIOSK": cfg, "SECRET_KEY": "test", "TESTING": True}).test_client()
    assert client.get("/api/status").get_json()["kiosk"]["state"] == "running"
    running.signal(signal.SIGSTOP)
    wait_until(lambda: client.get("/api/status").get_json()["kiosk"]["state"] == "hung", STALE_S + 3,
               what="the lobby saying the kiosk is hung")
    assert {s["state"] for s in client.get("/api/status").get_json()["services"]} == {"kiosk_down"}


def test_agent_next_to_a_dead_kiosk_says_so_after_the_start_grace(running, cfg):
    from edge_agent.health_kiosk import KioskWatch

    running.kill()
    elapsed = {"s": 0.0}
    kw = KioskWatch(cfg, monotonic=lambda: elapsed["s"])
    assert kw.poll() is None  # at boot the agent may look before the kiosk has started
    elapsed["s"] = STALE_S + 0.1
    event = kw.poll()
    assert (event["state"], event["was"], event["ended"]) == ("not_running", None, "crashed")
    assert kw.poll() is None and kw.take_news() and not kw.take_news()
