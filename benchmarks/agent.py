"""Uplink bytes per day, resident memory and CPU of the edge agent (``python -m edge_agent run``).

The real agent process talks MQTT v5 to a real Mosquitto (tests/support/broker.py:
the shipped config and ACL, the kiosk's own password) through a TCP proxy
on loopback that parses the MQTT stream both ways, so every packet is
counted with its type, topic and exact size. The kernel's own segment
counts of the agent's connection are read with TCP_INFO on the proxy's
socket. The agent probes three loopback targets: ICMP to 127.0.0.1
("gateway"), TCP to a listener of ours ("central-ktp", which service A
needs) and DNS to a tiny responder of ours ("dns"). Its kiosk ledger is a
real one in the data dir, made by building a kiosk (dummy printer) and
issuing a few tickets.

Two runs of the agent:

- **compressed** (probe 1 s, health 1 s, publish 2 s, fail/success
  threshold 2/1): the size of every message kind. Meanwhile the kiosk (in
  this process) issues tickets until a burst alarm and a full day, its
  printer runs out of paper and comes back, and the central listener goes
  down and up again, so every event kind the agent relays shows up once.
- **defaults** (no interval keys: probe 10 s, health 60 s, publish 300 s,
  keepalive 30 s): connect, the first publishes and keepalives as they
  really happen, and the agent's memory and CPU.

Bytes per day at the defaults are then *computed* from the measured sizes
and stated counts per day. Nothing leaves loopback.

    python benchmarks/agent.py            # ~2 min (compressed 30 s, defaults 90 s)
    python benchmarks/agent.py --quick    # ~35 s (compressed 14 s, defaults 20 s)
"""

import itertools
import json
import logging
import math
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import QUOTA, arguments, machine, office_config, say, table
from support.broker import Broker  # the real Mosquitto with the shipped config and ACL
from support.config import load, write
from support.dns import FakeNameserver
from support.proxy import DOWNSTREAM, UPSTREAM, Connection, FaultProxy

from kiosk.app import build_kiosk
from kiosk.seam import PrinterStatus

REPO = Path(__file__).resolve().parent.parent

OFFICE, KIOSK = "serang-kota", "kiosk-1"
BASE = f"antrean/{OFFICE}/{KIOSK}"
DAY_S = 86_400
MONTH_DAYS = 30
# The agent's defaults (edge_agent/config.py), for the arithmetic.
DEFAULT_PUBLISH_S, DEFAULT_HEALTH_S, DEFAULT_PROBE_S, DEFAULT_KEEPALIVE_S = 300, 60, 10, 30
# TCP/IP: IPv4 header 20 + TCP header 20 + timestamps option 12 (Linux negotiates it by default).
# Link-layer framing (Ethernet 14-38, PPP, a cellular bearer's) comes on top and is not counted.
IP_TCP_HEADER = 52
MSS = 1448  # a 1500-byte MTU less the 52 above
TLS13_RECORD = 22  # TLS 1.3 record header 5 + AEAD tag 16 + content type 1, for the note only
# State changes and events per day that the computation assumes (not measured: they depend on the office).
ASSUMED = {
    "network_changes": 20,  # 10 short outages a day, each a down and an up transition
    "outages": 10,  # -> 10 outage_started + 10 outage_ended events
    "health_changes": 10,  # printer state, alerts appearing or clearing
    "printer_fault": 4,  # paper near end, paper out, cover open, back to ok
    "quota_exhausted": 4,  # one full day per service
    "burst_alarm": 1,
    "reconnects": 1,  # the broker restarts or the line drops once a day
}

MQTT_TYPES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
              8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
              14: "DISCONNECT", 15: "AUTH"}
UP, DOWN = "agent->broker", "broker->agent"


# ---------------------------------------------------------------- the MQTT stream, parsed


class MqttStream:
    """Splits one direction of an MQTT v5 connection into packets: (type, size, topic, payload)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, int, str | None, bytes | None]]:
        self.buf += data
        out = []
        while True:
            header = _fixed_header(self.buf)
            if header is None:
                return out
            length, start = header
            end = start + length
            if len(self.buf) < end:
                return out
            first, body = self.buf[0], bytes(self.buf[start:end])
            del self.buf[:end]
            kind = MQTT_TYPES.get(first >> 4, f"type {first >> 4}")
            topic = payload = None
            if kind == "PUBLISH":
                topic, payload = _publish_parts(first, body)
            out.append((kind, end, topic, payload))


def _fixed_header(buf: bytearray):
    """(remaining length, offset of the variable header), or None if the header is not complete yet."""
    value, shift = 0, 0
    for i in range(1, 5):
        if i >= len(buf):
            return None
        value |= (buf[i] & 0x7F) << shift
        if not buf[i] & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("malformed MQTT remaining length")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _publish_parts(first: int, body: bytes) -> tuple[str, bytes]:
    (topic_len,) = struct.unpack_from("!H", body, 0)
    topic = body[2:2 + topic_len].decode("utf-8", "replace")
    pos = 2 + topic_len + (2 if (first >> 1) & 3 else 0)  # packet id for QoS 1/2
    props_len, pos = _varint(body, pos)
    return topic, body[pos + props_len:]


# ---------------------------------------------------------------- the counting proxy


def tcp_info(sock: socket.socket) -> dict | None:
    """Segment counters of a Linux TCP socket (struct tcp_info, kernel 4.6+)."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    except OSError:
        return None
    if len(raw) < 160:
        return None
    segs_out, segs_in = struct.unpack_from("=II", raw, 136)
    data_segs_in, data_segs_out = struct.unpack_from("=II", raw, 152)
    return {"segs_out": segs_out, "segs_in": segs_in, "data_segs_in": data_segs_in,
            "data_segs_out": data_segs_out, "timestamps": bool(raw[5] & 1)}


class CountingProxy(FaultProxy):
    """The harness's fault proxy in front of the broker, recording every MQTT packet, both ways, with its time."""

    def __init__(self, target_port: int):
        self.packets: list[dict] = []  # t, dir, type, size, topic, payload, conn
        self.reads = {UP: 0, DOWN: 0}  # recv() calls that returned data: a floor for the data segments
        self._streams: dict[tuple, MqttStream] = {}
        self._cond = threading.Condition()
        super().__init__(target_port)

    def connected(self, connection: Connection) -> None:
        with self._cond:
            for direction in (UPSTREAM, DOWNSTREAM):
                self._streams[connection.number, direction] = MqttStream()

    def forwarded(self, connection: Connection, direction: str, data: bytes, at: float) -> None:
        label = UP if direction == UPSTREAM else DOWN
        with self._cond:
            self.reads[label] += 1
            for kind, size, topic, payload in self._streams[connection.number, direction].feed(data):
                self.packets.append({"t": at, "dir": label, "type": kind, "size": size, "topic": topic,
                                     "payload": payload, "conn": connection.number})
            self._cond.notify_all()

    def wait_for(self, predicate, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.packets), timeout_s)

    def expect(self, predicate, timeout_s: float, what: str, agent: "AgentProcess") -> None:
        """Wait for packets that satisfy ``predicate``; stop the benchmark with the agent's log if none come."""
        deadline = time.monotonic() + timeout_s
        while not self.wait_for(predicate, 0.5):
            agent.check()
            if time.monotonic() > deadline:
                with self._cond:
                    last = [(p["type"], p["topic"]) for p in self.packets[-8:]]
                raise SystemExit(f"no {what} within {timeout_s} s; last packets: {last}\n{agent.log()}")

    def snapshot(self) -> dict:
        """Packets so far and the kernel's segment counts of the newest agent connection."""
        with self._cond:
            sock = self.connections[-1].client if self.connections else None
            return {"t": time.monotonic(), "packets": len(self.packets), "reads": dict(self.reads),
                    "conn": len(self.connections), "tcp": tcp_info(sock) if sock is not None else None}

    def since(self, mark: dict | None = None, until: dict | None = None) -> list[dict]:
        with self._cond:
            return self.packets[(mark or {}).get("packets", 0):(until or {}).get("packets", len(self.packets))]


# ---------------------------------------------------------------- loopback targets


class Central:
    """The central server service A needs: a loopback listener that accepts and closes, and can go down."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepts: list[float] = []  # monotonic time of each probe connection
        self._start()

    def _start(self):
        threading.Thread(target=self._accept, args=(self.sock,), daemon=True).start()

    def _accept(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.accepts.append(time.monotonic())
            conn.close()

    def round_starts(self, since: float, until: float) -> list[float]:
        """Start of each probe round: the first connect of each cluster (a round's connects are 0.2 s apart)."""
        starts, previous = [], None
        for t in self.accepts:
            if since <= t <= until and (previous is None or t - previous > 1.0):
                starts.append(t)
            previous = t
        return starts

    def down(self):
        self.sock.close()

    def up(self):
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self._start()

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- config and processes


QUERY_NAME = "siak.example.go.id"  # the DNS target's question; the loopback nameserver answers 127.0.0.1
COMPRESSED = {"probe_interval_s": 1, "health_interval_s": 1, "publish_interval_s": 2, "fail_threshold": 2,
              "success_threshold": 1}


def kiosk_doc(data_dir: str) -> dict:
    """The benchmarks' busy office (4 services, quota 150) with the dummy printer; service A needs central-ktp."""
    doc = office_config(data_dir)
    doc["printer"] = {"backend": "dummy"}
    doc["services"][0]["needs_targets"] = ["central-ktp"]
    return doc


def agent_doc(kiosk: dict, agent_dir: str, keys: dict, mqtt: dict, dns_port: int, central_port: int):
    """The kiosk's file with the agent's sections: the given [mqtt], three loopback targets."""
    return {**kiosk, "agent": {"data_dir": agent_dir, **keys}, "mqtt": mqtt,
            "targets": [{"name": "gateway", "kind": "icmp", "role": "gateway", "host": "127.0.0.1"},
                        {"name": "dns", "kind": "dns", "role": "dns", "host": "127.0.0.1", "port": dns_port,
                         "query_name": QUERY_NAME},
                        {"name": "central-ktp", "kind": "tcp", "role": "central", "host": "127.0.0.1",
                         "port": central_port}]}


def child_env() -> dict:
    # KIOSK_* and AGENT_* variables would reconfigure (or break) the agent.
    return {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "AGENT_"))}


def proc_stat(pid: int) -> dict:
    """CPU seconds of the process (and of its waited-for children) and its memory, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    out = {"cpu_s": (int(fields[11]) + int(fields[12])) / tick,
           "children_cpu_s": (int(fields[13]) + int(fields[14])) / tick, "t": time.monotonic()}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0])  # kB of 1024 bytes, or a count for Threads
    return out


class AgentProcess:
    """``python -m edge_agent --config FILE run`` with its log in a file; SIGTERM to stop, SIGKILL if it hangs."""

    def __init__(self, config_path: str, log_path: str):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", config_path, "run"],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     env=child_env(), cwd=str(REPO))

    def check(self):
        if self.proc.poll() is not None:
            raise SystemExit(f"the agent exited with {self.proc.returncode}:\n{self.log()}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]


# ---------------------------------------------------------------- classifying packets


def classify(p: dict) -> str:
    kind, topic = p["type"], p["topic"]
    if kind != "PUBLISH":
        return kind
    if topic.startswith("homeassistant/device/"):
        return "PUBLISH HA discovery"
    rest = topic[len(BASE) + 1:] if topic.startswith(BASE + "/") else topic
    if rest == "status":
        return f"PUBLISH status {p['payload'].decode(errors='replace')}"
    if rest == "network":
        changed = b'"transitions":[]' not in p["payload"]
        return "PUBLISH network, with transitions" if changed else "PUBLISH network, no transition"
    return f"PUBLISH {rest}"


def is_publish(p, kind: str) -> bool:
    return p["dir"] == UP and classify(p) == kind


def by_kind(packets: list[dict]) -> dict[tuple[str, str], list[int]]:
    kinds: dict[tuple[str, str], list[int]] = {}
    for p in packets:
        kinds.setdefault((classify(p), p["dir"]), []).append(p["size"])
    return kinds


ORDER = ("CONNECT", "CONNACK", "PUBLISH status online", "SUBSCRIBE", "SUBACK", "PUBLISH HA discovery",
         "PUBLISH announcement", "PUBLISH health", "PUBLISH network, no transition",
         "PUBLISH network, with transitions", "PUBLISH events/", "PUBACK", "PINGREQ", "PINGRESP",
         "PUBLISH status offline", "DISCONNECT")


def order_key(item):
    (kind, direction), _ = item
    for i, prefix in enumerate(ORDER):
        if kind.startswith(prefix):
            return (i, kind, direction)
    return (len(ORDER), kind, direction)


# ---------------------------------------------------------------- the runs


def wait_connected(proxy: CountingProxy, agent: AgentProcess, mark: dict, timeout_s: float = 20.0):
    proxy.expect(seen(mark, "PUBLISH status online"), timeout_s, "connection (status online)", agent)


def seen(mark: dict, kind_prefix: str):
    """A predicate for CountingProxy.wait_for: a PUBLISH of this kind from the agent since ``mark``."""
    return lambda ps: any(p["dir"] == UP and classify(p).startswith(kind_prefix) for p in ps[mark["packets"]:])


def kiosk_events(kiosk) -> None:
    """Make the kiosk record each event kind the agent relays."""
    for _ in range(kiosk.guard.burst_max + 1):  # the (burst_max + 1)th ticket within the window: burst_alarm
        kiosk.handle_press("A")
    kiosk.printer.state = PrinterStatus.PAPER_OUT
    kiosk.handle_press("B")  # refused: the printer state is recorded as an event (printer_fault)
    kiosk.printer.state = PrinterStatus.OK
    kiosk.tick()  # and back to ok
    for _ in range(QUOTA):  # a day of D fills: day_full -> quota_exhausted
        kiosk.handle_press("D")


def compressed_run(paths: dict, proxy: CountingProxy, central: Central, kiosk_cfg, seconds: float) -> dict:
    say(f"compressed run ({seconds:.0f} s): probe 1 s, health 1 s, publish 2 s ...")
    mark = proxy.snapshot()
    agent = AgentProcess(paths["config_a"], paths["log_a"])
    kiosk = None
    try:
        wait_connected(proxy, agent, mark)
        t_up = time.monotonic()
        proxy.expect(seen(mark, "PUBLISH network, with transitions"), 15, "first network change", agent)
        kiosk = build_kiosk(kiosk_cfg)
        say("  kiosk events: burst alarm, paper out and back, a full day ...")
        kiosk_events(kiosk)
        proxy.expect(seen(mark, "PUBLISH events/quota_exhausted"), 15, "quota_exhausted event", agent)
        say("  central-ktp down, then up ...")
        central.down()
        proxy.expect(seen(mark, "PUBLISH events/outage_started"), 20, "outage_started event", agent)
        central.up()
        proxy.expect(seen(mark, "PUBLISH events/outage_ended"), 20, "outage_ended event", agent)
        left = seconds - (time.monotonic() - t_up)
        if left > 0:
            time.sleep(left)
        agent.check()
        end = proxy.snapshot()
        wall = time.monotonic() - t_up
    finally:
        if kiosk is not None:
            kiosk.stop()
            kiosk.ledger.close()
        status = agent.stop()
    time.sleep(0.2)  # the proxy's pumps record the last packets (offline, DISCONNECT)
    if status != 0:
        raise SystemExit(f"the compressed agent exited {status}:\n{agent.log()}")
    return {"packets": proxy.since(mark), "wall": wall, "until_end": proxy.since(mark, end), "start": mark,
            "end": end}


def bare_python(out: dict) -> None:
    """Memory and CPU of an interpreter that only sleeps, read 4.5 s into its 5 s."""
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"], env=child_env())
    t0 = time.monotonic()
    try:
        time.sleep(4.5)
        out.update(proc_stat(bare.pid))
        out["wall"] = time.monotonic() - t0
        bare.wait(10)
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        out["error"] = repr(exc)
    finally:
        if bare.poll() is None:
            bare.kill()
            bare.wait()


def default_run(paths: dict, proxy: CountingProxy, central: Central, seconds: float, settle_s: float) -> dict:
    say(f"default-settings run ({seconds:.0f} s) and a bare python for reference ...")
    mark = proxy.snapshot()
    agent = AgentProcess(paths["config_b"], paths["log_b"])
    bare_stat: dict = {}
    bare_thread = threading.Thread(target=bare_python, args=(bare_stat,), daemon=True)
    bare_thread.start()
    try:
        wait_connected(proxy, agent, mark)
        t_up = time.monotonic()
        time.sleep(max(0.0, settle_s - (time.monotonic() - t_up)))
        agent.check()
        settled, settled_stat = proxy.snapshot(), proc_stat(agent.proc.pid)
        time.sleep(max(0.0, seconds - (time.monotonic() - agent.t0)))
        agent.check()
        end, end_stat = proxy.snapshot(), proc_stat(agent.proc.pid)
    finally:
        status = agent.stop()
        bare_thread.join(15)
    time.sleep(0.2)
    if status != 0:
        raise SystemExit(f"the default-settings agent exited {status}:\n{agent.log()}")
    if "error" in bare_stat or "VmRSS" not in bare_stat:
        raise SystemExit(f"the reference python could not be measured: {bare_stat.get('error', 'no reading')}")
    rounds = central.round_starts(agent.t0, end["t"])
    return {"packets": proxy.since(mark), "start": mark, "settled": settled, "end": end, "rounds": rounds,
            "t0": agent.t0, "t_up": t_up, "settled_stat": settled_stat, "end_stat": end_stat, "bare": bare_stat,
            "steady": proxy.since(settled, end), "until_end": proxy.since(mark, end)}


# ---------------------------------------------------------------- arithmetic and tables


def kb(n: float) -> str:
    return f"{n / 1000:,.1f} KB"


def mb_kib(kib: float) -> str:
    return f"{kib * 1024 / 1e6:.1f} MB"


def data_segments(size: int) -> int:
    return max(1, math.ceil(size / MSS))


def exchange_packets(request: int, response: int) -> int:
    """IP packets of one request/response exchange on a 1500-byte MTU link (the model; see the notes).

    Each message in as many segments as the MSS needs; the response carries the ACK of the
    request's last segment; one pure ACK for the response; the receiver of a multi-segment
    message ACKs every second segment before that.
    """
    req, resp = data_segments(request), data_segments(response)
    return req + resp + 1 + (req - 1) // 2 + (resp - 1) // 2


def intervals(packets: list[dict], kind: str) -> float | None:
    times = [p["t"] for p in packets if is_publish(p, kind)]
    if len(times) < 3:
        return None
    return statistics.mean(b - a for a, b in itertools.pairwise(times))


def typical(sizes: dict, kind: str, direction: str = UP, fallback: int | None = None) -> int | None:
    values = sizes.get((kind, direction))
    return round(statistics.median(values)) if values else fallback


def main(argv=None) -> int:
    parser = arguments(__doc__, "a fast smoke run (~40 s)")
    parser.add_argument("--seconds", type=float, help="length of the default-settings run (default 90, quick 20)")
    args = parser.parse_args(argv)
    compressed_s = 14.0 if args.quick else 30.0
    default_s = args.seconds or (20.0 if args.quick else 90.0)
    settle_s = 8.0 if args.quick else 15.0

    started = time.monotonic()
    central = dns = proxy = broker = None
    with tempfile.TemporaryDirectory(prefix="antrean-bench-agent-") as tmp:
        try:
            broker = Broker(Path(tmp) / "broker").start()
            proxy = CountingProxy(broker.port)
            central, dns = Central(), FakeNameserver({QUERY_NAME: "127.0.0.1"})
            data_dir = os.path.join(tmp, "data")
            mqtt = broker.mqtt_config(os.path.join(tmp, "mqtt.secret"), port=proxy.port)  # through the proxy
            kiosk = kiosk_doc(data_dir)
            paths = {"log_a": os.path.join(tmp, "agent-compressed.log"),
                     "log_b": os.path.join(tmp, "agent-defaults.log")}
            for name, agent_dir, keys in (("config_a", "agent-compressed", COMPRESSED),
                                          ("config_b", "agent-defaults", {})):
                paths[name] = os.path.join(tmp, f"{name}.toml")
                write(paths[name], agent_doc(kiosk, os.path.join(tmp, agent_dir), keys, mqtt, dns.port, central.port))
            kiosk_cfg = load(kiosk)
            say("building the kiosk ledger (dummy printer, 8 tickets) ...")
            logging.getLogger("kiosk").setLevel(logging.ERROR)  # its burst and paper warnings are on purpose
            kiosk = build_kiosk(kiosk_cfg)
            issued = sum(kiosk.handle_press(code).kind == "ticket" for code in "ABCDABCD")
            kiosk.stop()
            kiosk.ledger.close()

            comp = compressed_run(paths, proxy, central, kiosk_cfg, compressed_s)
            defaults = default_run(paths, proxy, central, default_s, settle_s)
            dns_sizes = dns.sizes
            broker_version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.split("\n")[0]
        finally:
            for thing in (central, dns, proxy):
                if thing is not None:
                    thing.close()
            if broker is not None:
                broker.stop()
    report(comp, defaults, issued, broker_version, compressed_s, default_s, time.monotonic() - started, dns_sizes)
    return 0


def report(comp, defaults, issued, broker_version, compressed_s, default_s, total_s, dns_sizes) -> None:
    c_sizes = by_kind(comp["packets"])
    d_sizes = by_kind(defaults["packets"])
    print("# Edge agent: uplink bytes per day, memory and CPU\n")
    print(f"Machine: {machine()}")
    print(f"`python -m edge_agent --config FILE run` (a real process) -> counting TCP proxy -> {broker_version} "
          f"(shipped config and ACL, kiosk password), all on 127.0.0.1. Targets: icmp gateway 127.0.0.1, "
          f"dns (a loopback responder), tcp central-ktp (a loopback listener; service A needs it). Kiosk ledger: "
          f"4 services, {issued} tickets issued before the runs. MQTT bytes are whole MQTT v5 packets (fixed "
          f"header included) as they crossed the proxy; KB = 1000 bytes, MB = 10^6 bytes. "
          f"Benchmark wall time {total_s:.0f} s.\n")

    # ---- 1a
    print(f"## 1a. Size of each message kind, measured (compressed intervals, {comp['wall']:.0f} s)\n")
    print("probe 1 s, health 1 s, publish 2 s, fail/success threshold 2/1, keepalive 30 s (default). "
          "Meanwhile the kiosk recorded a burst alarm, paper out and back, and a full day, and central-ktp "
          "went down and up.\n")
    rows = []
    for (kind, direction), sizes in sorted(c_sizes.items(), key=order_key):
        rows.append([kind, direction, len(sizes), min(sizes), round(statistics.median(sizes)), max(sizes),
                     f"{sum(sizes):,}"])
    print(table(["MQTT packet", "direction", "count", "bytes min", "median", "max", "total bytes"], rows))
    health_iv = intervals(comp["until_end"], "PUBLISH health")
    net_times = [p["t"] for p in comp["until_end"] if p["dir"] == UP and classify(p).startswith("PUBLISH network")]
    net_iv = statistics.mean(b - a for a, b in itertools.pairwise(net_times)) if len(net_times) > 2 else None
    print(f"\nObserved: a health message every {fmt_s(health_iv)} and a network message every {fmt_s(net_iv)} "
          f"on average (publish_interval_s = 2; both include changes). A sample goes out at the first collection "
          f"at least publish_interval_s after the last, and a probe round here takes ~0.8 s (5 pings 0.2 s apart), "
          f"a large part of these short intervals: this says little about the defaults (see 1d).")
    comp_tcp = tcp_delta(comp["start"], comp["end"])

    # ---- 1b
    print(f"\n## 1b. Default settings, measured ({default_s:.0f} s run, {fmt_s(defaults['t_up'] - defaults['t0'])} "
          f"from start to connected)\n")
    rows = []
    up_total = down_total = 0
    for (kind, direction), sizes in sorted(d_sizes.items(), key=order_key):
        first = [round(p["t"] - defaults["t0"], 1) for p in defaults["packets"]
                 if classify(p) == kind and p["dir"] == direction]
        when = ", ".join(f"{t:g}" for t in first[:6]) + (" ..." if len(first) > 6 else "")
        rows.append([kind, direction, len(sizes), f"{sum(sizes):,}", when])
        if direction == UP:
            up_total += sum(sizes)
        else:
            down_total += sum(sizes)
    rows.append(["**total MQTT**", "", len(defaults["packets"]), f"{up_total:,} up + {down_total:,} down", ""])
    print(table(["MQTT packet", "direction", "count", "bytes", "at (s after Popen)"], rows))
    whole = tcp_delta(defaults["start"], defaults["end"])
    steady = tcp_delta(defaults["settled"], defaults["end"])
    steady_s = defaults["end"]["t"] - defaults["settled"]["t"]
    steady_bytes = sum(p["size"] for p in defaults["steady"])
    steady_ex = exchanges(defaults["steady"])
    print()
    rows = [
        ["start to end of measurement (connect included)", fmt_s(defaults["end"]["t"] - defaults["start"]["t"]),
         f"{sum(p['size'] for p in defaults['until_end']):,}", exchanges(defaults["until_end"]),
         seg_text(whole), ip_bytes(whole)],
        [f"steady state (from {fmt_s(defaults['settled']['t'] - defaults['t_up'])} after connect)",
         fmt_s(steady_s), f"{steady_bytes:,}", steady_ex, seg_text(steady), ip_bytes(steady)],
        ["compressed run (1a), for comparison", fmt_s(comp["end"]["t"] - comp["start"]["t"]),
         f"{sum(p['size'] for p in comp['until_end']):,}", exchanges(comp["until_end"]), seg_text(comp_tcp),
         ip_bytes(comp_tcp)],
    ]
    print(table(["window", "length", "MQTT bytes (both ways)", "MQTT exchanges", "TCP segments (kernel)",
                 f"TCP/IP headers at {IP_TCP_HEADER} B/segment"], rows))
    ts = (whole or {}).get("timestamps")
    print(f"\nTCP segments: TCP_INFO (segs_in + segs_out) of the proxy's socket facing the agent, so the agent's "
          f"own connection, pure ACKs included; TCP timestamps {'on' if ts else 'off' if ts is not None else 'n/a'}. "
          f"An exchange is a request and its answer (PUBLISH+PUBACK, PINGREQ+PINGRESP, CONNECT+CONNACK, "
          f"SUBSCRIBE+SUBACK). On loopback the MSS is ~64 KB, so no message is split here.")

    # ---- 1c
    sizes = {}
    for source in (c_sizes, d_sizes):
        for key, values in source.items():
            sizes.setdefault(key, []).extend(values)
    puback = typical(sizes, "PUBACK", DOWN, 4)
    pingreq = typical(sizes, "PINGREQ", UP)
    pingresp = typical(sizes, "PINGRESP", DOWN)
    ping_note = "measured" if pingreq and pingresp else "not seen in this run, 2 + 2 bytes per the MQTT spec"
    pingreq, pingresp = pingreq or 2, pingresp or 2
    health = typical(sizes, "PUBLISH health")
    net_sample = typical(sizes, "PUBLISH network, no transition")
    net_change = typical(sizes, "PUBLISH network, with transitions", fallback=net_sample)
    connect = (typical(sizes, "CONNECT"), typical(sizes, "CONNACK", DOWN))
    subscribe = (typical(sizes, "SUBSCRIBE"), typical(sizes, "SUBACK", DOWN))
    discovery = typical(sizes, "PUBLISH HA discovery")
    online = typical(sizes, "PUBLISH status online")
    per_day = DAY_S / DEFAULT_PUBLISH_S
    pings = DAY_S / DEFAULT_KEEPALIVE_S
    lines = [
        ("health sample (PUBLISH + PUBACK)", per_day, f"86400 / publish_interval_s {DEFAULT_PUBLISH_S} (nominal)",
         [(health, puback)]),
        ("network sample (PUBLISH + PUBACK)", per_day, f"86400 / publish_interval_s {DEFAULT_PUBLISH_S} (nominal)",
         [(net_sample, puback)]),
        ("keepalive (PINGREQ + PINGRESP)", pings, f"86400 / keepalive_s {DEFAULT_KEEPALIVE_S}",
         [(pingreq, pingresp)]),
        ("network change (with transitions)", ASSUMED["network_changes"], "assumed: 10 outages x down + up",
         [(net_change, puback)]),
        ("health change", ASSUMED["health_changes"], "assumed", [(health, puback)]),
    ]
    for kind in ("outage_started", "outage_ended"):
        lines.append((f"event {kind}", ASSUMED["outages"], "assumed: 10 outages",
                      [(typical(sizes, f"PUBLISH events/{kind}"), puback)]))
    for kind in ("printer_fault", "quota_exhausted", "burst_alarm"):
        lines.append((f"event {kind}", ASSUMED[kind], "assumed", [(typical(sizes, f"PUBLISH events/{kind}"), puback)]))
    lines.append(("reconnect: CONNECT, status, SUBSCRIBE, HA discovery", ASSUMED["reconnects"], "assumed",
                  [connect, (online, puback), subscribe, (discovery, puback)]))
    rows, total_mqtt, total_ip, total_packets, total_writes = [], 0, 0, 0, 0
    for label, count, why, parts in lines:
        if any(a is None or b is None for a, b in parts):
            rows.append([label, f"{count:,.0f}", why, "not seen", "", "", ""])
            continue
        each = sum(a + b for a, b in parts)
        packets = sum(exchange_packets(a, b) for a, b in parts)
        mqtt_day = each * count
        ip_day = mqtt_day + packets * count * IP_TCP_HEADER
        total_mqtt += mqtt_day
        total_ip += ip_day
        total_packets += packets * count
        total_writes += 2 * len(parts) * count
        rows.append([label, f"{count:,.0f}", why, f"{each:,}", packets, kb(mqtt_day), kb(ip_day)])
    rows.append(["**total per day**", "", "", "", f"{total_packets:,.0f}/day", kb(total_mqtt), kb(total_ip)])
    rows.append(["**total per month (30 days)**", "", "", "", "", f"{total_mqtt * MONTH_DAYS / 1e6:.2f} MB",
                 f"{total_ip * MONTH_DAYS / 1e6:.2f} MB"])
    print("\n## 1c. Bytes per day over the uplink at the defaults, computed\n")
    print("Sizes are the medians measured in 1a/1b (both directions of each exchange); counts per day are "
          "computed from the default intervals or assumed as stated. IP packets per exchange are a model, "
          f"not measured: {IP_TCP_HEADER} bytes of IPv4+TCP headers (with timestamps) per packet, "
          f"messages split at an MSS of {MSS} bytes (1500-byte MTU), the answer carries the ACK of the "
          "request, plus one pure ACK for the answer. Link-layer framing is not included.\n")
    print(table(["line", "per day", "count from", "MQTT bytes each", "IP packets each", "MQTT KB/day",
                 "MQTT + TCP/IP KB/day"], rows))
    tls_day = total_writes * TLS13_RECORD
    busy_pings = sum(1 for p in comp["packets"] if p["type"] == "PINGREQ")
    if busy_pings:
        print(f"\nPing size: {ping_note}. Other traffic does not save pings: the compressed run sent {busy_pings} "
              f"PINGREQ in {comp['wall']:.0f} s although a message went out every second or two (paho 2.2 does "
              f"not count its own writes as activity), so {pings:.0f} a day whatever the samples do.")
    else:
        print(f"\nPing size: {ping_note}. The compressed run is shorter than keepalive_s, so it cannot show "
              f"whether other traffic saves pings; the full run shows that it does not.")
    gaps = [b - a for a, b in itertools.pairwise(defaults["rounds"])]
    if gaps:
        round_s = statistics.mean(gaps)
        net_s = math.ceil(DEFAULT_PUBLISH_S / round_s) * round_s
        print(f"Sample counts are nominal (upper bounds): publish_interval_s is a minimum, a sample goes out at the "
              f"first collection at least {DEFAULT_PUBLISH_S} s after the last one. With probe rounds every "
              f"{round_s:.1f} s (1d) that is a network sample every {net_s:.1f} s ({DAY_S / net_s:.0f}/day), and a "
              f"health sample every {DEFAULT_PUBLISH_S} or {DEFAULT_PUBLISH_S + DEFAULT_HEALTH_S} s "
              f"(health_interval_s {DEFAULT_HEALTH_S}): {DAY_S / (DEFAULT_PUBLISH_S + DEFAULT_HEALTH_S):.0f}-"
              f"{per_day:.0f}/day. Not observable in this run's {default_s:.0f} s.")
    print(f"Measured floor, for comparison: the default-settings run's steady state moved "
          f"{steady_bytes:,} MQTT bytes in {steady_s:.0f} s, i.e. {kb(steady_bytes / steady_s * DAY_S)}/day "
          f"of MQTT before any sample is due.")
    print(f"Not measured: the office's kiosks use the TLS listener (docs/mqtt.md). TLS 1.3 adds "
          f"{TLS13_RECORD} bytes to every record, ~{total_writes:,.0f} records/day here = +{kb(tls_day)}/day, "
          f"plus a handshake of a few KB at every reconnect.")
    big = max(((k, statistics.median(v)) for k, v in sizes.items() if k[1] == UP), key=lambda kv: kv[1])
    print(f"Largest message kind: {big[0][0]} ({big[1]:,.0f} bytes), sent at every connect and HA birth only.")
    print(payload_notes(comp["packets"] + defaults["packets"]))

    # ---- 1d
    print(probe_section(defaults["rounds"], dns_sizes))

    # ---- 2
    b, s, e = defaults["bare"], defaults["settled_stat"], defaults["end_stat"]
    wall = e["t"] - defaults["t0"]
    cpu_all = (e["cpu_s"] + e["children_cpu_s"]) / wall
    cpu_steady = ((e["cpu_s"] + e["children_cpu_s"]) - (s["cpu_s"] + s["children_cpu_s"])) / (e["t"] - s["t"])
    print("\n## 2. Resident memory and CPU of the agent (default settings)\n")
    rows = [
        [f"agent, Popen to {wall:.0f} s (start-up included)", f"{wall:.0f} s", mb_kib(e["VmRSS"]), mb_kib(e["VmHWM"]),
         f"{mb_kib(e['RssAnon'])} / {mb_kib(e['RssFile'])}", e["Threads"],
         f"{cpu_all * 100:.2f} %", f"{e['cpu_s']:.2f} + {e['children_cpu_s']:.2f} s"],
        [f"agent, steady state ({s['t'] - defaults['t0']:.0f}-{wall:.0f} s)", f"{e['t'] - s['t']:.0f} s",
         mb_kib(s["VmRSS"]) + " -> " + mb_kib(e["VmRSS"]), "", "", s["Threads"], f"{cpu_steady * 100:.2f} %",
         f"{e['cpu_s'] - s['cpu_s']:.2f} + {e['children_cpu_s'] - s['children_cpu_s']:.2f} s"],
        ["reference: `python -c \"import time; time.sleep(5)\"`", f"{b['wall']:.1f} s", mb_kib(b["VmRSS"]),
         mb_kib(b["VmHWM"]), f"{mb_kib(b['RssAnon'])} / {mb_kib(b['RssFile'])}", b["Threads"],
         f"{(b['cpu_s'] + b['children_cpu_s']) / b['wall'] * 100:.2f} %", f"{b['cpu_s']:.2f} + 0 s"],
    ]
    print(table(["process", "wall", "VmRSS", "VmHWM", "RssAnon / RssFile", "threads", "CPU, % of one core",
                 "CPU s (own + children)"], rows))
    print(f"\nCPU = (utime + stime + cutime + cstime) from /proc/<pid>/stat / wall time: the children are the "
          f"commands the health collection runs (timedatectl here; vcgencmd on a Pi). Clock tick "
          f"{1 / os.sysconf('SC_CLK_TCK') * 1000:.0f} ms, so short windows are coarse. No target is set; for "
          f"scale, a Pi Zero 2 W has 512 MB of RAM and 4 cores much slower than this machine's.")


def probe_section(rounds: list[float], dns_sizes) -> str:
    """The probes' own packets: not MQTT, but over the uplink for every target beyond the office."""
    from edge_agent.probes import DEFAULT_COUNT
    from edge_agent.probes.icmp import PAYLOAD_SIZE

    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    observed = statistics.mean(gaps) if gaps else None
    per_day = DAY_S / DEFAULT_PROBE_S
    icmp = 2 * (20 + 8 + PAYLOAD_SIZE)  # echo request + reply, IPv4 + ICMP header + payload
    # SYN and SYN-ACK carry 20 bytes of options (MSS, SACK, timestamps, window scale); then ACK, and the
    # probe's close: FIN, ACK (+FIN), ACK. 7 packets; a server that closes first or sends a banner adds more.
    tcp = 2 * (20 + 40) + 5 * IP_TCP_HEADER
    dns = (28 + dns_sizes[0]) + (28 + dns_sizes[1]) if dns_sizes else None
    rows = [
        ["icmp (gateway: normally on the office LAN)", DEFAULT_COUNT["icmp"], f"{icmp} (echo {PAYLOAD_SIZE} B payload)",
         icmp * DEFAULT_COUNT["icmp"]],
        ["dns (resolver: LAN or provider)", DEFAULT_COUNT["dns"],
         f"{dns} (query + answer, as our responder answered)" if dns else "n/a", (dns or 0) * DEFAULT_COUNT["dns"]],
        ["tcp connect (central-ktp: over the uplink)", DEFAULT_COUNT["tcp"], f"{tcp} (7 packets, model)",
         tcp * DEFAULT_COUNT["tcp"]],
    ]
    out = ["\n## 1d. The probes' own packets per day at the defaults, computed (not MQTT)\n",
           f"Probe rounds in the default-settings run started every {fmt_s(observed)} on average "
           f"(probe_interval_s = {DEFAULT_PROBE_S}; measured from the connects to central-ktp, {len(rounds)} rounds). "
           f"Bytes are IP packets, computed from the probe code's counts and sizes.\n"]
    table_rows = []
    for label, count, each, per_round in rows:
        table_rows.append([label, count, each, per_round, kb(per_round * per_day),
                           kb(per_round * DAY_S / observed) if observed else "n/a"])
    out.append(table(["target", "requests per round", "IP bytes per request", "IP bytes per round",
                      f"per day at {DEFAULT_PROBE_S} s", "per day at the observed interval"], table_rows))
    return "\n".join(out)


def payload_notes(packets: list[dict]) -> str:
    """Where the bytes of the recurring messages go, and what that means for the outbox."""
    last = {}
    for p in packets:
        if p["dir"] == UP and p["payload"]:
            last[classify(p)] = p
    notes = []
    health = last.get("PUBLISH health")
    if health is not None:
        body = json.loads(health["payload"])
        envelope = len(json.dumps({k: body[k] for k in ("boot_id", "seq", "at", "kiosk_id", "office_id")},
                                  separators=(",", ":")))
        parts = {key: len(json.dumps(body.get(key), ensure_ascii=False, separators=(",", ":")))
                 for key in ("kiosk", "unavailable", "memory", "disk", "data_mount", "boots")}
        notes.append(f"Health payload {len(health['payload']):,} bytes of JSON; of it `kiosk` "
                     f"{parts['kiosk']:,} (4 services), `unavailable` {parts['unavailable']:,} (reasons for the "
                     f"{len(body.get('unavailable') or {})} sources this machine lacks; on a Pi most of these are "
                     f"values instead), disk + data_mount {parts['disk'] + parts['data_mount']:,}, "
                     f"boots {parts['boots']:,}. Per message, the envelope (boot_id, seq, at, kiosk_id, "
                     f"office_id) is {envelope:,} bytes of JSON and the MQTT fixed header, topic, packet id and v5 "
                     f"properties (ContentType, PayloadFormatIndicator) {health['size'] - len(health['payload'])}.")
    network = last.get("PUBLISH network, no transition")
    if network is not None:
        body = json.loads(network["payload"])
        per_target = statistics.mean(len(json.dumps(t, separators=(",", ":"))) for t in body["targets"].values())
        verdict = len(json.dumps(body["verdict"], separators=(",", ":")))
        notes.append(f"Network payload {len(network['payload']):,} bytes: ~{per_target:,.0f} per target "
                     f"(x{len(body['targets'])}), verdict {verdict:,} (4 services); every sample repeats each "
                     f"target's state, reason and last result in full.")
    if health is not None and network is not None:
        pair = sum(len(p["topic"].encode()) + len(p["payload"]) for p in (health, network))
        pairs = 5_000_000 / pair
        days = pairs / (DAY_S / DEFAULT_PUBLISH_S)
        notes.append(f"Outbox: a health + network sample pair is {pair:,} bytes of topic + body, so the default "
                     f"outbox_max_bytes (5,000,000) holds ~{pairs:,.0f} pairs = {days:.1f} "
                     f"days of samples at the defaults before the oldest are dropped (docs/mqtt.md assumes "
                     f"~400 bytes per message).")
    announcement = last.get("PUBLISH announcement")
    if announcement is not None and b'"historical":true' in announcement["payload"]:
        notes.append("The announcement state sent at start carries `historical: true`: the agent queues it "
                     "before its first connection is up.")
    return "\n".join(notes)


def exchanges(packets: list[dict]) -> int:
    return sum(1 for p in packets if p["type"] in ("CONNACK", "SUBACK", "PINGRESP")
               or (p["type"] == "PUBACK" and p["dir"] == DOWN))


def tcp_delta(a: dict, b: dict) -> dict | None:
    """Segments between two snapshots; from the connection's start if ``a`` was taken before it."""
    if b.get("tcp") is None:
        return None
    keys = ("segs_in", "segs_out", "data_segs_in", "data_segs_out")
    base = a["tcp"] if a["conn"] == b["conn"] and a.get("tcp") is not None else dict.fromkeys(keys, 0)
    out = {k: b["tcp"][k] - base[k] for k in keys}
    out["timestamps"] = b["tcp"]["timestamps"]
    return out


def seg_text(delta: dict | None) -> str:
    if delta is None:
        return "n/a"
    total = delta["segs_in"] + delta["segs_out"]
    data = delta["data_segs_in"] + delta["data_segs_out"]
    return f"{total} ({data} with data)"


def ip_bytes(delta: dict | None) -> str:
    if delta is None:
        return "n/a"
    return f"{(delta['segs_in'] + delta['segs_out']) * IP_TCP_HEADER:,} bytes"


def fmt_s(value) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    sys.exit(main())
