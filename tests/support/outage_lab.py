"""The parts of tests/test_broker_outage_day.py's office: processes, the central server, the outbox watch,
the stations and the day's timeline. The test and its checks are in that module."""

import datetime as dt
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support.broker import Broker, Collector, base
from support.config import ALWAYS_OPEN, file_printer, kiosk_config, service, write
from support.kiosk_process import Process, start_agent, start_kiosk
from support.wait import wait_until

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


def station_config(data_dir: Path, kiosk_id: str, mqtt: dict, central_port: int, outbox_max_bytes: int) -> dict:
    """One station's file: open around the clock, service A needs the central server, MQTT to the broker."""
    intervals = {key: value / COMPRESSION for key, value in DEFAULT_INTERVALS.items()}
    services = [service(code, quota, **({"needs_targets": ["central-ktp"]} if code == "A" else {}))
                for code, quota in QUOTAS.items()]
    return kiosk_config(data_dir, services, kiosk_id=kiosk_id, calendar={**ALWAYS_OPEN, "booking_horizon_days": 3},
                        printer=file_printer(data_dir), buttons={"backend": "keyboard", "cooldown_ms": 0},
                        agent={**intervals, "outbox_max_bytes": outbox_max_bytes},
                        mqtt=mqtt,
                        targets=[{"name": "central-ktp", "kind": "http", "role": "central",
                                  "url": f"http://127.0.0.1:{central_port}/health", "timeout_ms": 500}])


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
        mqtt = broker.mqtt_config(root / f"{kiosk_id}.secret", OFFICE, kiosk_id)
        self.config = write(root / f"{kiosk_id}.toml", station_config(self.data_dir, kiosk_id, mqtt, central.port,
                                                                       outbox_max_bytes))
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
        self.kiosk = start_kiosk(self.config, ready=False, name=f"{self.kiosk_id} kiosk")
        return self.kiosk

    def start_agent(self) -> Process:
        prefix = ()
        if self.fake_reboot:  # a private mount namespace in which the kernel's boot id file says what boot_file says
            prefix = ("unshare", "--mount", "sh", "-c", BIND_BOOT_ID, "sh", str(self.boot_file))
        self.agent = start_agent(self.config, prefix=prefix, name=f"{self.kiosk_id} agent")
        self.agent_runs.append(self.agent)
        return self.agent

    def press(self, count: int) -> None:
        """Citizens press buttons; nobody can while the kiosk is starting again."""
        if self.kiosk is None or not self.kiosk.ready.is_set() or not self.kiosk.alive:
            return
        if self.kiosk.press("".join(self.rng.choice(KEY_WEIGHTS) for _ in range(count))):
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
            wait_until(lambda s=s: s.relay_cursor() is not None, 20,
                       what=f"{s.kiosk_id}'s agent taking its place in the kiosk's events", every_s=0.02)
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
        """Kiosks stop at end of input, then agents cleanly (their "offline" comes after everything they sent).

        Presses go to a kiosk's stdin without waiting, so the last ones may still be served (and their
        events written) after the last tick: each kiosk serves every press before it exits, and only
        then is its agent's relay of the last event awaited."""
        for s in self.stations:
            s.kiosk.close_input()
        for s in self.stations:
            assert s.kiosk.end() == 0, s.kiosk.log()
        for s in self.stations:  # the agent relays the kiosk's last events between its probe rounds
            wait_until(lambda s=s: (s.relay_cursor() or 0) >= s.last_kiosk_event(), 20,
                       what=f"{s.kiosk_id}'s agent relaying the kiosk's last events", every_s=0.02)
        mark = len(self.receiver.messages)
        for s in self.stations:
            s.agent.proc.send_signal(signal.SIGTERM)
        for s in self.stations:
            self.receiver.wait_for(lambda ms, s=s: any(m.topic == f"{s.base}/status" and m.payload == b"offline"
                                                       for m in ms[mark:]), what=f"{s.kiosk_id}'s offline")
            assert s.agent.end() == 0, s.agent.log()
            s.watch.look()
            s.left = set(s.watch.present)


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
