"""The parts of tests/test_broker_outage_day.py's office: processes, the central server, the outbox watch,
the stations and the day's timeline. The test and its checks are in that module."""

import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from broker import Broker, Collector, base

HOUR_S = 3.0  # real seconds per office hour
COMPRESSION = 3600 / HOUR_S
OUTAGE_HOURS = 12
MORNING_HOURS = 1  # issuing with the broker up, before the outage
TICK_HOURS = 5 / 60
PRESSES_PER_TICK = 3  # 432 presses per kiosk in 12 hours: an office's day
DEFAULT_INTERVALS = {"probe_interval_s": 10, "health_interval_s": 60, "publish_interval_s": 300}
DEFAULT_OUTBOX = 5_000_000
TIGHT_OUTBOX = 150_000  # events and changes fit easily; about three hours of samples do not
# Over three booking days A and B keep room, C fills up (its citizens get slips to see staff).
QUOTAS = {"A": 75, "B": 60, "C": 30}
KEY_WEIGHTS = "aaaabbbcc"  # e-KTP is the busiest service
MAX_IN_FLIGHT = 20  # edge_agent.mqtt's window: a sample dropped while in flight may still arrive
OFFICE = "serang-kota"
CONFIG = """
id = "{kiosk_id}"
data_dir = "{data_dir}"
[office]
id = "serang-kota"
name = "Disdukcapil Kota Serang"
[calendar]
open_weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
opens_at = "00:00"
last_ticket_at = "23:59"
closes_at = "23:59"
booking_horizon_days = 3
[[services]]
code = "A"
name = "Perekaman e-KTP"
daily_quota = {quota_a}
needs_targets = ["central-ktp"]
[[services]]
code = "B"
name = "Kartu Keluarga"
daily_quota = {quota_b}
[[services]]
code = "C"
name = "Akta Kelahiran"
daily_quota = {quota_c}
[printer]
backend = "file"
path = "{data_dir}/printer.out"
create = true
[buttons]
backend = "keyboard"
cooldown_ms = 0
[agent]
probe_interval_s = {probe_interval_s!r}
health_interval_s = {health_interval_s!r}
publish_interval_s = {publish_interval_s!r}
outbox_max_bytes = {outbox_max_bytes}
[mqtt]
host = "127.0.0.1"
port = {port}
password_file = "{secret}"
[[targets]]
name = "central-ktp"
kind = "http"
role = "central"
url = "http://127.0.0.1:{central}/health"
timeout_ms = 500
"""


# ------------------------------------------------------------------ the parts

class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Central:
    """The central server service A needs: HTTP on loopback, switched off and on by the test."""

    def __init__(self):
        self._server = None
        self.port = 0
        self.up()

    def up(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _Healthy)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # connections are refused from now on
            self._server = None


class Notify:
    """A systemd notify socket of our own: READY=1 says a process is up, WATCHDOG=1 counts its loop turns.

    It is read all the time: a full socket would block the process's sd_notify and so its loop.
    """

    def __init__(self):
        name = f"antrean-test-{uuid.uuid4().hex[:12]}"
        self.address = "@" + name
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + name)
        self.ready = threading.Event()
        self.pings = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self._sock.recv(256)
            except OSError:
                return
            if not data:
                return
            if data == b"READY=1":
                self.ready.set()
            elif data == b"WATCHDOG=1":
                self.pings += 1

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class Process:
    """One started process, its stderr drained (a full pipe would block its logging), its notify socket."""

    def __init__(self, name: str, argv: list, stdin: bool = False):
        self.name = name
        self.notify = Notify()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "AGENT_", "NOTIFY_", "WATCHDOG_"))}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env={**env, "NOTIFY_SOCKET": self.notify.address})
        self.log = deque(maxlen=200)  # the tail, for a failure's message
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    def wait_ready(self, timeout_s: float = 30.0):
        if not self.notify.ready.wait(timeout_s):
            raise AssertionError(f"{self.name} not ready within {timeout_s} s (exit {self.proc.poll()}): "
                                 + "\n".join(self.log))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.notify.close()

    def end(self, timeout_s: float = 30.0) -> int:
        """Wait for a clean exit after SIGTERM or end of input."""
        try:
            code = self.proc.wait(timeout_s)
        finally:
            self.notify.close()
        return code


BIND_BOOT_ID = 'mount --bind "$1" /proc/sys/kernel/random/boot_id && shift && exec "$@"'


def can_fake_a_reboot(scratch: Path) -> bool:
    """Whether a process can be given its own kernel boot id (root, unshare, bind mounts)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    fake = scratch / "probe.boot_id"
    fake.write_text("00000000-0000-4000-8000-000000000000\n")
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", BIND_BOOT_ID, "sh", str(fake),
                            "cat", "/proc/sys/kernel/random/boot_id"], capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout == fake.read_text()


@dataclass(frozen=True)
class Row:
    """One message as the outbox held it."""

    id: int
    topic: str
    kind: str
    body: dict
    size: int


class OutboxWatch:
    """Reads an agent's outbox file from outside, every 50 ms: every row it ever held, and its size.

    The outbox's own accounting is the ``size`` column that ``max_bytes`` bounds; SQLite's pages and
    WAL come on top and are recorded as ``peak_db_bytes`` and ``peak_wal_bytes``.
    """

    def __init__(self, path: Path, max_bytes: int):
        self.path, self.max_bytes = path, max_bytes
        self.rows: dict[tuple, Row] = {}  # (boot_id, seq) -> Row, every row ever seen
        self.present: set = set()  # keys in the outbox at the last look
        self.bytes = self.peak_bytes = self.peak_db_bytes = self.peak_wal_bytes = self.dropped = 0
        self.over_budget: list[int] = []  # outbox bytes of every look above max_bytes
        self.looks = 0
        self._last_id = 0
        self._key_by_id: dict[int, tuple] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, isolation_level=None,
                                   check_same_thread=False)
        self.look()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        # Every 50 ms: each put is seen (the agents make about 10 a second), and a reader that held
        # the WAL more often would keep the agent's checkpoints from cutting it back.
        while not self._stop.wait(0.05):
            try:
                self.look()
            except sqlite3.OperationalError:
                continue  # a restarting agent recovers the WAL: look again next time

    def look(self) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN")  # one consistent snapshot for the rows and the totals
            try:
                new = db.execute("SELECT id, topic, kind, body, size FROM outbox WHERE id > ? ORDER BY id",
                                 (self._last_id,)).fetchall()
                present = db.execute("SELECT id FROM outbox").fetchall()
                total = db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0]
                dropped = db.execute("SELECT value FROM outbox_meta WHERE key = 'dropped'").fetchone()[0]
            finally:
                db.execute("COMMIT")
            for row_id, topic, kind, body, size in new:
                parsed = json.loads(body)
                self.rows[key_of(parsed)] = Row(row_id, topic, kind, parsed, size)
                self._key_by_id[row_id] = key_of(parsed)
                self._last_id = row_id
            self.present = {self._key_by_id[row_id] for (row_id,) in present}
            self.bytes, self.dropped = total, dropped
            self.peak_bytes = max(self.peak_bytes, total)
            if total > self.max_bytes:
                self.over_budget.append(total)
            self.peak_db_bytes = max(self.peak_db_bytes, file_size(self.path))
            self.peak_wal_bytes = max(self.peak_wal_bytes, file_size(Path(f"{self.path}-wal")))
            self.looks += 1

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self._db.close()


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def key_of(body: dict) -> tuple:
    return body["boot_id"], body["seq"]


class Station:
    """One kiosk and its edge agent on one Pi, sharing one TOML file and data directory."""

    def __init__(self, root: Path, kiosk_id: str, broker: Broker, central: Central, outbox_max_bytes: int,
                 fake_reboot: bool, seed: str):
        self.kiosk_id, self.outbox_max_bytes, self.fake_reboot = kiosk_id, outbox_max_bytes, fake_reboot
        self.base = base(OFFICE, kiosk_id)
        self.data_dir = root / kiosk_id
        self.data_dir.mkdir(parents=True)
        secret = root / f"{kiosk_id}.secret"
        secret.write_text(broker.passwords[f"{OFFICE}-{kiosk_id}"])
        intervals = {key: value / COMPRESSION for key, value in DEFAULT_INTERVALS.items()}
        self.config = root / f"{kiosk_id}.toml"
        self.config.write_text(CONFIG.format(
            kiosk_id=kiosk_id, data_dir=self.data_dir, port=broker.port, secret=secret, central=central.port,
            outbox_max_bytes=outbox_max_bytes, **intervals, **{f"quota_{k.lower()}": q for k, q in QUOTAS.items()}))
        self.boot_file = root / f"{kiosk_id}.boot_id"
        self.reboot()
        self.kiosk = self.agent = None
        self.agent_runs: list[Process] = []
        self.rng = random.Random(seed)
        self.presses = 0
        self.watch: OutboxWatch | None = None
        self.day = None
        self.cursor0 = None  # the kiosk event id the agent started relaying after
        self.backlog: dict = {}  # what waited in the outbox when the broker came back
        self.dropped_at_up = 0
        self.left: set = set()  # still in the outbox after the clean stop: made in the last moments

    @property
    def outbox(self) -> Path:
        return self.data_dir / "agent" / "outbox.sqlite3"

    def reboot(self):
        """A new kernel boot id for the agents started from now on (a real reboot makes one)."""
        self.boot_file.write_text(f"{uuid.uuid4()}\n")

    def start_kiosk(self) -> Process:
        self.kiosk = Process(f"{self.kiosk_id} kiosk",
                             [sys.executable, "-m", "kiosk", "run", "--config", str(self.config)], stdin=True)
        return self.kiosk

    def start_agent(self) -> Process:
        argv = [sys.executable, "-m", "edge_agent", "--config", str(self.config), "run"]
        if self.fake_reboot:
            # A private mount namespace in which the kernel's boot id file says what boot_file says.
            argv = ["unshare", "--mount", "sh", "-c", BIND_BOOT_ID, "sh", str(self.boot_file), *argv]
        self.agent = Process(f"{self.kiosk_id} agent", argv)
        self.agent_runs.append(self.agent)
        return self.agent

    def press(self, count: int) -> None:
        """Citizens press buttons; nobody can while the kiosk is starting again."""
        if self.kiosk is None or not self.kiosk.notify.ready.is_set() or not self.kiosk.alive:
            return
        keys = "".join(self.rng.choice(KEY_WEIGHTS) for _ in range(count))
        try:
            self.kiosk.proc.stdin.write(keys.encode() + b"\n")
            self.kiosk.proc.stdin.flush()
        except BrokenPipeError:
            return
        self.presses += count

    def relay_cursor(self) -> int | None:
        """Where the agent started following the kiosk's events (set at its first look; history is not news)."""
        path = self.data_dir / "agent" / "agent.sqlite3"
        if not path.exists():
            return None
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM kv WHERE key = 'kiosk_event_cursor'").fetchone()
        finally:
            db.close()
        return None if row is None else json.loads(row[0])

    def last_kiosk_event(self) -> int:
        db = sqlite3.connect(f"file:{self.data_dir / 'ledger.sqlite3'}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        finally:
            db.close()

    def processes(self):
        return [p for p in (self.kiosk, *self.agent_runs) if p is not None]


# ------------------------------------------------------------------ the day

class Day:
    """Runs the timeline and remembers when things happened."""

    def __init__(self, broker: Broker, central: Central, stations: list, receiver: Collector):
        self.broker, self.central, self.stations, self.receiver = broker, central, stations, receiver
        self.agent_restarts = self.power_cuts = 0
        self.connected_at = self.down_at = self.up_at = None

    def morning(self) -> None:
        """Kiosks and agents start with the broker up; everything made now arrives at once."""
        for process in [s.start_kiosk() for s in self.stations]:
            process.wait_ready()
        for process in [s.start_agent() for s in self.stations]:
            process.wait_ready()
        for s in self.stations:
            self.receiver.wait_for(lambda ms, s=s: {f"{s.base}/health", f"{s.base}/network"} <= {m.topic for m in ms},
                                   timeout_s=20, what=f"{s.kiosk_id}'s first health and network")
            wait_until_set(s.relay_cursor, what=f"{s.kiosk_id}'s agent to take its place in the kiosk's events")
            s.cursor0 = s.relay_cursor()
            s.watch = OutboxWatch(s.outbox, s.outbox_max_bytes)
        self.connected_at = now()  # what is made from now on goes out at once (start-up messages waited)
        self.issue(MORNING_HOURS)

    def outage(self) -> None:
        self.broker.stop()
        self.down_at = now()
        self.issue(OUTAGE_HOURS, {2.0: self.central.down, 3.5: self.central.up, 5.0: self.restart_agents,
                                  7.5: self.central.down, 8.0: self.power_cut, 9.0: self.central.up})
        for s in self.stations:
            s.watch.look()
            s.backlog = {k: s.watch.rows[k] for k in s.watch.present}
            s.dropped_at_up = s.watch.dropped
        self.up_at = now()
        self.broker.start()

    def issue(self, hours: float, actions: dict | None = None) -> None:
        """Presses every 5 office minutes; the actions at their hour. A late tick is not made up by sleeping."""
        pending = sorted((actions or {}).items())
        ticks = round(hours / TICK_HOURS)
        start = time.monotonic()
        for tick in range(ticks):
            while pending and pending[0][0] <= tick * TICK_HOURS:
                pending.pop(0)[1]()
            for s in self.stations:
                s.press(PRESSES_PER_TICK)
            pause_until(start + (tick + 1) * TICK_HOURS * HOUR_S)

    def restart_agents(self) -> None:
        for s in self.stations:
            s.agent.kill()
        self.agent_restarts += len(self.stations)
        for process in [s.start_agent() for s in self.stations]:
            process.wait_ready()

    def power_cut(self) -> None:
        victims = [p for s in self.stations for p in (s.kiosk, s.agent)]
        for p in victims:  # the same instant, as near as signals get
            p.proc.send_signal(signal.SIGKILL)
        for p in victims:
            p.kill()
        self.power_cuts += 1
        for s in self.stations:
            s.reboot()
        started = [s.start_kiosk() for s in self.stations] + [s.start_agent() for s in self.stations]
        for process in started:
            process.wait_ready()

    def wait_drained(self, timeout_s: float = 45.0) -> float:
        """Until every backlog event and change arrived and every backlog sample arrived or was dropped.

        The agents retry the broker with a back-off of up to 16 s by then; the drain itself takes a second.
        """
        t0 = time.monotonic()
        for s in self.stations:
            predicate = drained(s)
            try:
                self.receiver.wait_for(predicate, timeout_s=timeout_s, what=f"{s.kiosk_id}'s backlog")
            except AssertionError as exc:
                lost = predicate.urgent - predicate.got
                gone = lost - s.watch.present
                raise AssertionError(f"{len(lost)} events and changes of {s.kiosk_id}'s backlog never arrived, "
                                     f"{len(gone)} of them are no longer in its outbox: "
                                     f"{sorted(s.watch.rows[k].topic for k in gone)[:5]}") from exc
        return time.monotonic() - t0

    def evening(self) -> None:
        """Agents stop cleanly (their "offline" comes after everything they sent), kiosks at end of input."""
        for s in self.stations:  # the agent relays the kiosk's last events between its probe rounds
            wait_until_set(lambda s=s: True if (s.relay_cursor() or 0) >= s.last_kiosk_event() else None,
                           what=f"{s.kiosk_id}'s agent to relay the kiosk's last events")
        mark = len(self.receiver.messages)
        for s in self.stations:
            s.agent.proc.send_signal(signal.SIGTERM)
        for s in self.stations:
            self.receiver.wait_for(lambda ms, s=s: any(m.topic == f"{s.base}/status" and m.payload == b"offline"
                                                       for m in ms[mark:]), what=f"{s.kiosk_id}'s offline")
            assert s.agent.end() == 0, "\n".join(s.agent.log)
            s.watch.look()
            s.left = set(s.watch.present)
            s.kiosk.proc.stdin.close()
            assert s.kiosk.end() == 0, "\n".join(s.kiosk.log)


def drained(station):
    backlog = station.backlog
    urgent = {k for k, row in backlog.items() if row.kind != "sample"}
    samples = {k for k, row in backlog.items() if row.kind == "sample"}
    got, looked = set(), [0]

    def predicate(messages):
        for m in messages[looked[0]:]:
            if m.topic.startswith(station.base + "/") and not m.topic.endswith("/status"):
                got.add(key_of(json.loads(m.payload)))
        looked[0] = len(messages)
        dropped_since = station.watch.dropped - station.dropped_at_up
        return urgent <= got and len(samples & got) + dropped_since >= len(samples)

    predicate.urgent, predicate.got = urgent, got
    return predicate


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def made_at(body: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(body["at"])


def pause_until(deadline: float) -> None:
    # Pacing the citizens, not waiting for the system: nothing to wait on here.
    time.sleep(max(0.0, deadline - time.monotonic()))


def wait_until_set(read, timeout_s: float = 20.0, what: str = "the value"):
    """For a value another process writes to disk: there is no event to wait on from outside."""
    deadline = time.monotonic() + timeout_s
    while read() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        time.sleep(0.02)
