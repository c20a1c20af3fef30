"""A real Mosquitto for tests, configured from hardware/mosquitto/ so the tests exercise the shipped rules.

``Broker(workdir)`` writes a mosquitto.conf made from
hardware/mosquitto/mosquitto.conf (only the port, the file paths and the
log destination replaced), an ACL made from hardware/mosquitto/acl.example
(the example kiosk block copied for each test kiosk) and a password file
made with ``mosquitto_passwd -b``. ``start()`` waits until the broker
accepts connections; ``stop()``, ``kill()`` and ``start()`` again reuse the
same port and the same persistence directory.

``Collector`` and ``Requester`` are paho clients for the test's side: tests
wait on them for a condition instead of sleeping. The ``broker`` fixture (tests/conftest.py)
starts one for a test and kills it after.

The shipped config binds client ids to accounts (``use_username_as_clientid``):
two connections of one account take over each other. So the shared
accounts (``technician``, ``homeassistant``) have numbered copies
(``technician-2`` ...) with the same ACL block, and each test client asking
for ``technician`` gets the next copy, as a site gives each person or tool
its own account.
"""

import datetime as dt
import getpass
import itertools
import json
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from support.system import need
from support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
CONF_TEMPLATE = REPO / "hardware" / "mosquitto" / "mosquitto.conf"
ACL_TEMPLATE = REPO / "hardware" / "mosquitto" / "acl.example"
EXAMPLE_OFFICE, EXAMPLE_KIOSK = "serang-kota", "kiosk-1"
KIOSKS = (("serang-kota", "kiosk-1"), ("serang-kota", "kiosk-2"))
OTHER_USERS = ("technician", "homeassistant")
ACCOUNT_COPIES = 8  # simultaneous test clients of one shared account


def copies(user: str) -> list[str]:
    """The numbered accounts that stand in for one shared account: technician, technician-2, ..."""
    return [user] + [f"{user}-{n}" for n in range(2, ACCOUNT_COPIES + 1)]
# Lines of the shipped config that the test broker must keep: without them the tests would prove nothing.
REQUIRED = ("allow_anonymous false", "persistence true", "per_listener_settings false")


def username(office: str, kiosk: str) -> str:
    return f"{office}-{kiosk}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def broker_conf(template: str, port: int, workdir: Path, tls_port: int | None = None) -> str:
    """The shipped config with this machine's port and paths; every other line as written.

    With ``tls_port`` the commented-out TLS listener is switched on, with the test's certificates.
    """
    lines, seen, tls_lines = [], set(), 0
    for line in template.splitlines():
        seen.add(line.strip())
        if tls_port is not None and line.startswith("#"):
            enabled = _enable_tls(line, tls_port, workdir / "tls")
            if enabled != line:
                lines.append(enabled)
                tls_lines += 1
                continue
        key = line.split(" ", 1)[0] if line and not line.startswith("#") else None
        if key == "listener":
            if line.split()[1:] != ["1883", "127.0.0.1"]:
                raise AssertionError(f"unexpected uncommented listener {line!r} in {CONF_TEMPLATE}")
            line = f"listener {port} 127.0.0.1"
        elif key == "password_file":
            line = f"password_file {workdir / 'passwd'}"
        elif key == "acl_file":
            line = f"acl_file {workdir / 'acl'}"
        elif key == "persistence_location":
            line = f"persistence_location {workdir / 'data'}/"
        elif key == "log_dest":
            line = f"log_dest file {workdir / 'mosquitto.log'}" if "log_dest" not in seen else ""
            seen.add("log_dest")
        elif key == "pid_file":
            line = ""
        lines.append(line)
    if tls_port is not None and tls_lines != 5:
        raise AssertionError(f"{CONF_TEMPLATE}: expected the commented TLS block (#listener 8883, #cafile, "
                             f"#certfile, #keyfile, #tls_version), found {tls_lines} of its 5 lines")
    missing = [r for r in REQUIRED + ("password_file", "acl_file") if not any(s.startswith(r) for s in seen)]
    if missing:
        raise AssertionError(f"{CONF_TEMPLATE} lost {missing}; the tests need the shipped security settings")
    # Run as whoever runs the tests: as root mosquitto would switch to user "mosquitto",
    # which cannot write the test's temporary directory.
    lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n"


def _enable_tls(line: str, tls_port: int, tls_dir: Path) -> str:
    if line.startswith("#listener 8883"):
        return f"listener {tls_port} 127.0.0.1"  # loopback only in tests
    for key, name in (("cafile", "ca.crt"), ("certfile", "broker.crt"), ("keyfile", "broker.key")):
        if line.startswith(f"#{key} "):
            return f"{key} {tls_dir / name}"
    if line.startswith("#tls_version "):
        return line[1:]
    return line


def make_certificates(tls_dir: Path) -> None:
    """A throw-away CA and a broker certificate for 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        raise AssertionError("openssl is not installed; apt-get install openssl")
    tls_dir.mkdir(parents=True, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tls_dir, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=antrean test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
            "-subj", "/CN=127.0.0.1")
    (tls_dir / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "broker.crt", "-days", "2", "-extfile", "san.ext")


def broker_acl(template: str, kiosks=KIOSKS, shared=OTHER_USERS) -> str:
    """The ACL with the example kiosk's block copied for each test kiosk, the ``shared`` accounts'
    blocks for each of their copies; other blocks unchanged."""
    blocks, current = [], []
    for line in template.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("user "):
            current = [line]
            blocks.append(current)
        elif blocks:
            current.append(line)
        else:
            raise AssertionError(f"{ACL_TEMPLATE} has rule {line!r} before any user line: it would apply to "
                                 "anonymous clients")
    example = username(EXAMPLE_OFFICE, EXAMPLE_KIOSK)
    out = []
    for block in blocks:
        name = block[0].split(" ", 1)[1]
        if name in shared:
            for copy in copies(name):
                out.extend([f"user {copy}"] + block[1:] + [""])
            continue
        if block[0] != f"user {example}":
            out.extend(block + [""])
            continue
        for office, kiosk in kiosks:
            for line in block:
                line = line.replace(f"antrean/{EXAMPLE_OFFICE}/{EXAMPLE_KIOSK}/", f"antrean/{office}/{kiosk}/")
                out.append(line.replace(example, username(office, kiosk)))
            out.append("")
    if kiosks and not any(line == f"user {example}" for block in blocks for line in block[:1]):
        raise AssertionError(f"{ACL_TEMPLATE} has no 'user {example}' block to copy for the test kiosks")
    return "\n".join(out)


class Broker:
    def __init__(self, workdir: Path, kiosks=KIOSKS, tls: bool = False):
        need(shutil.which("mosquitto") is not None and shutil.which("mosquitto_passwd") is not None,
             "mosquitto is not installed; apt-get install mosquitto mosquitto-clients")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        self.host, self.port = "127.0.0.1", free_port()
        self.kiosks = tuple(kiosks)
        users = [username(o, k) for o, k in self.kiosks] + [c for u in OTHER_USERS for c in copies(u)]
        self.passwords = {user: secrets.token_urlsafe(12) for user in users}
        self._next_copy = {user: itertools.cycle(copies(user)) for user in OTHER_USERS}
        self.tls_port = None
        if tls:
            make_certificates(self.workdir / "tls")
            self.tls_port = free_port()
        self.ca_file = str(self.workdir / "tls" / "ca.crt")
        self.conf = self.workdir / "mosquitto.conf"
        self.conf.write_text(broker_conf(CONF_TEMPLATE.read_text(), self.port, self.workdir, self.tls_port))
        (self.workdir / "acl").write_text(broker_acl(ACL_TEMPLATE.read_text(), self.kiosks))
        self._write_passwords()
        self.proc: subprocess.Popen | None = None

    def mqtt_config(self, secret, office: str = EXAMPLE_OFFICE, kiosk: str = EXAMPLE_KIOSK,
                    port: int | None = None) -> dict:
        """The kiosk file's [mqtt] section for one test kiosk on this broker (or on ``port``, a proxy in front
        of it); the kiosk's password is written to the file ``secret`` as the section names it."""
        Path(secret).write_text(self.passwords[username(office, kiosk)])
        return {"host": self.host, "port": port or self.port, "password_file": str(secret)}

    def account(self, user: str) -> str:
        """The account a new test client logs in with: the next copy of a shared account, else ``user``."""
        return next(self._next_copy[user]) if user in self._next_copy else user

    def _write_passwords(self) -> None:
        path = self.workdir / "passwd"
        path.write_text("")
        for user, password in self.passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True, capture_output=True)

    def start(self, timeout_s: float = 10.0) -> "Broker":
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # Polled: there is no event to wait on from outside the process.
        wait_until(self._listening, timeout_s, what=f"mosquitto listening on {self.port}")
        return self

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"mosquitto exited with {self.proc.returncode}: "
                                 f"{self.proc.stderr.read().decode()} {self.log()}")
        try:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its database (retained messages, persistent sessions) and exits."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes; anything since its last autosave is lost."""
        self._end(signal.SIGKILL)

    def save(self) -> None:
        """SIGUSR1: mosquitto writes its database now."""
        self.proc.send_signal(signal.SIGUSR1)

    def _end(self, sig) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)  # SIGKILL ends a paused (SIGSTOPped) broker too
        self.proc.wait(10)
        self.proc.stderr.close()

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


def base(office: str = EXAMPLE_OFFICE, kiosk: str = EXAMPLE_KIOSK) -> str:
    return f"antrean/{office}/{kiosk}"


def client(broker: Broker, user: str | None, *, client_id: str | None = None, persistent: bool = False,
           on_message=None, on_connected=None, on_subscribe=None) -> tuple[mqtt.Client, threading.Event]:
    """A started paho v5 client and an Event set at each successful CONNACK.

    Callbacks are set before the network thread starts: set later, they may miss the first CONNACK.
    """
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{secrets.token_hex(4)}",
                    protocol=mqtt.MQTTv5)
    if user is not None:
        user = broker.account(user)
        c.username_pw_set(user, broker.passwords[user])
    up = threading.Event()

    def on_connect(cl, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            if on_connected is not None:
                on_connected(cl)
            up.set()

    c.on_connect = on_connect
    if on_message is not None:
        c.on_message = on_message
    if on_subscribe is not None:
        c.on_subscribe = on_subscribe
    c.reconnect_delay_set(0.05, 0.3)
    props = None
    if persistent:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
    c.connect_async(broker.host, broker.port, 30, clean_start=not persistent, properties=props)
    c.loop_start()
    return c, up


class Collector:
    """Subscribes to ``topics`` and records every message; ``wait_for`` waits for a condition on them."""

    def __init__(self, broker: Broker, user: str, topics, *, persistent: bool = False, client_id: str | None = None):
        self.messages: list[mqtt.MQTTMessage] = []
        self._cond = threading.Condition()
        self._topics = list(topics)
        self._subscribed = threading.Event()
        self.client, self.up = client(broker, user, client_id=client_id, persistent=persistent,
                                      on_message=self._on_message, on_subscribe=lambda *a: self._subscribed.set(),
                                      on_connected=lambda c: c.subscribe([(t, 1) for t in self._topics]))
        if not self._subscribed.wait(10):
            raise AssertionError(f"collector for {topics} did not subscribe within 10 s")

    def _on_message(self, c, userdata, message):
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout_s: float = 10.0, what: str = "the expected messages"):
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.messages), timeout_s):
                shown = [(m.topic, m.payload[:80]) for m in self.messages[-10:]]
                raise AssertionError(f"no {what} within {timeout_s} s; last messages: {shown}")
            return list(self.messages)

    def payloads(self, topic: str) -> list:
        with self._cond:
            return [m.payload for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Requester:
    """A technician asking one kiosk: MQTT v5 request/response with correlation data.

    A dict payload gets ``sent_at`` from ``clock`` (epoch seconds; the kiosk's clock if the test
    fakes it) unless it has one; raw bytes go as they are."""

    def __init__(self, broker: Broker, user: str = "technician", kiosk_base: str | None = None,
                 reply_to: str | None = None, clock=time.time):
        self.clock = clock
        self.base = kiosk_base or base()
        self.reply_to = reply_to or f"{self.base}/reply/tech-{secrets.token_hex(3)}"
        self.answers: dict[bytes, dict] = {}
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client, self.up = client(broker, user, on_message=self._on_message,
                                      on_connected=lambda c: c.subscribe(self.reply_to, 1),
                                      on_subscribe=lambda *a: self._subscribed.set())
        if not self._subscribed.wait(10):
            raise AssertionError("requester did not subscribe within 10 s")

    def _on_message(self, c, userdata, message):
        correlation = getattr(message.properties, "CorrelationData", None)
        with self._cond:
            self.answers[correlation] = json.loads(message.payload)
            self._cond.notify_all()

    def send(self, verb: str, payload, *, response_topic: str | None = "default", topic: str | None = None,
             correlation: bytes | None = None, retain: bool = False) -> bytes:
        """Publish a request; returns its correlation data. ``payload`` may be a dict or raw bytes."""
        correlation = correlation or secrets.token_bytes(8)
        props = Properties(PacketTypes.PUBLISH)
        if response_topic is not None:
            props.ResponseTopic = self.reply_to if response_topic == "default" else response_topic
        props.CorrelationData = correlation
        if isinstance(payload, dict):
            payload = {"sent_at": self.now().isoformat(timespec="seconds"), **payload}
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        info = self.client.publish(topic or f"{self.base}/cmd/{verb}", data, qos=1, retain=retain, properties=props)
        info.wait_for_publish(5)
        return correlation

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock()).astimezone()

    def ask(self, verb: str, payload, timeout_s: float = 10.0) -> dict:
        return self.wait(self.send(verb, payload), timeout_s)

    def wait(self, correlation: bytes, timeout_s: float = 10.0) -> dict:
        with self._cond:
            if not self._cond.wait_for(lambda: correlation in self.answers, timeout_s):
                raise AssertionError(f"no answer for correlation {correlation!r} within {timeout_s} s")
            return self.answers[correlation]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_link(broker: Broker, workdir: Path, *, office: str = EXAMPLE_OFFICE, kiosk: str = EXAMPLE_KIOSK,
              handlers=None, port: int | None = None, **kwargs):
    """An MqttLink for one test kiosk with its own outbox in ``workdir``; not started."""
    from edge_agent.commands import CommandDispatcher
    from edge_agent.mqtt import MqttLink
    from edge_agent.outbox import Outbox

    user = username(office, kiosk)
    outbox = kwargs.pop("outbox", None) or Outbox(str(Path(workdir) / f"{user}.outbox.sqlite3"))
    options = dict(host=broker.host, port=port or broker.port, client_id=user, username=user,
                   password=broker.passwords[user], tls=None, keepalive_s=30, topic_base=base(office, kiosk),
                   outbox=outbox, dispatcher=CommandDispatcher(handlers or {}), kiosk_id=kiosk, office_id=office,
                   reconnect_min_s=0.05, reconnect_max_s=0.3)
    options.update(kwargs)
    return MqttLink(**options)
