"""The kiosk and the agent speak systemd's notify protocol to a real datagram socket."""

import os
import socket
import subprocess
import sys

import pytest
from support.config import MQTT_OFF, process_config, write

from common.sdnotify import Notifier

LOOPBACK = {"name": "loopback", "kind": "tcp", "host": "127.0.0.1", "port": 1, "timeout_ms": 200}


@pytest.fixture
def systemd(tmp_path):
    """What systemd listens on: an AF_UNIX datagram socket; messages arrive as they are sent."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    yield path, sock
    sock.close()


def messages_until(sock, wanted: str) -> list[str]:
    """Every message up to and including ``wanted``; fails, saying what came, if it never does."""
    seen = []
    while wanted not in seen:
        try:
            seen.append(sock.recv(256).decode())
        except TimeoutError:
            raise AssertionError(f"no {wanted} within 20 s; the process said {seen}") from None
    return seen


def test_notifier_without_systemd_does_nothing():
    assert Notifier(address="").ready() is False


def test_kiosk_ready_watchdog_stopping(systemd, tmp_path):
    path, sock = systemd
    write(tmp_path / "kiosk.toml", process_config(tmp_path, 5))
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(tmp_path / "kiosk.toml")],
                            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "NOTIFY_SOCKET": path})
    try:
        messages_until(sock, "READY=1")  # each fails, saying what came instead, if it never comes
        messages_until(sock, "WATCHDOG=1")  # the working loop, still alive after ready
        proc.stdin.close()
        assert "STOPPING=1" in messages_until(sock, "STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def test_agent_ready_and_watchdog(systemd, tmp_path):
    path, sock = systemd
    config = tmp_path / "kiosk.toml"
    write(config, {**process_config(tmp_path, 5), "mqtt": MQTT_OFF, "targets": [LOOPBACK]})
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "run"],
                            stderr=subprocess.DEVNULL, env={**os.environ, "NOTIFY_SOCKET": path})
    try:
        seen = messages_until(sock, "WATCHDOG=1")
        assert seen[0] == "READY=1"
        proc.terminate()
        seen += messages_until(sock, "STOPPING=1")
        # Only the agent speaks: a child such as timedatectl, failing without systemd, said "ERRNO=112".
        assert {m.split("=")[0] for m in seen} <= {"READY", "WATCHDOG", "STOPPING", "STATUS"}, seen
        assert proc.wait(30) == 0
    finally:
        proc.kill()
