"""Test helper: network namespaces joined by veth pairs, servers inside them, faults with iptables.

Everything a :class:`Lab` makes (namespaces, links, routes, processes) is
removed by :meth:`Lab.close` (or at the end of ``with Lab() as lab:``), also after a failed test. Addresses come from
one 10.B.0.0/16 block per lab, B from 200 to 254, chosen so that it is used
by no interface or route of this machine and by no other lab running at the
same time (a marker file per block, under a lock).

Run as a script, it is the servers the tests start inside namespaces::

    python tests/support/netns.py http --port 8080 [--delay 2] [--status 200] [--cert C --key K]
    python tests/support/netns.py dns --port 53 --name central.test --address 10.1.2.3

Each prints "ready PORT" on stdout once it listens (``--port 0``: any free
port), so a test waits for that line instead of sleeping.
"""

import argparse
import fcntl
import functools
import itertools
import os
import select
import shutil
import subprocess
import sys
import time

BLOCKS = range(200, 255)
MARKER_DIR = "/run/antrean-netns"
NETNS_ETC = "/etc/netns"  # per-namespace files that `ip netns exec` bind-mounts over /etc
READY_TIMEOUT_S = 10
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_labs = itertools.count()


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why namespace tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespace tests need root (CI runs them as root)"
    for tool in ("ip", "iptables"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.get_exec_path()):
            return f"{tool} is not installed (Debian: iproute2, iptables)"
    name = f"antprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        return f"'ip netns add' does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def sh(*argv: str, ns: str | None = None) -> str:
    """Run a command (inside namespace ``ns`` if given); its stdout; raise with its stderr if it fails."""
    full = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    done = subprocess.run(full, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(full)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class Lab:
    """Namespaces and links made for one test."""

    def __init__(self):
        self.tag = f"{os.getpid() % 100000}x{next(_labs)}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self._links = itertools.count(1)
        self.block, self._marker = _reserve_block()

    def subnet(self, n: int) -> str:
        """The ``n``-th /24 of this lab's block, without the host part: "10.B.n"."""
        return f"10.{self.block}.{n}"

    def namespace(self, role: str) -> str:
        name = f"ant{self.tag}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def link(self, a: str | None, b: str, subnet: int) -> tuple[str, str]:
        """A veth pair from ``a`` (None: the root namespace) to ``b``: a gets .1, b gets .2 of the subnet.

        Returns the interface names (a's, b's).
        """
        n = next(self._links)
        if_a, if_b = f"av{self.tag}{n}a", f"av{self.tag}{n}b"
        sh("ip", "link", "add", if_a, "type", "veth", "peer", "name", if_b, ns=a)
        sh("ip", "link", "set", if_b, "netns", b, ns=a)
        for ns, ifname, host in ((a, if_a, 1), (b, if_b, 2)):
            sh("ip", "addr", "add", f"{self.subnet(subnet)}.{host}/24", "dev", ifname, ns=ns)
            sh("ip", "link", "set", ifname, "up", ns=ns)
        return if_a, if_b

    def spawn(self, ns: str, *argv: str) -> tuple[subprocess.Popen, int]:
        """Start ``argv`` inside ``ns``; wait for its "ready PORT" line."""
        proc, port = spawn(["ip", "netns", "exec", ns, *argv])
        self.processes.append(proc)
        return proc, port

    def serve(self, ns: str, kind: str, *args: str) -> tuple[subprocess.Popen, int]:
        """One of this file's servers inside ``ns``, and the port it listens on."""
        return self.spawn(ns, *server_argv(kind, *args))

    def resolv_conf(self, ns: str, nameserver: str) -> None:
        """Give ``ns`` its own /etc/resolv.conf: ``ip netns exec`` bind-mounts /etc/netns/NS/resolv.conf over it."""
        os.makedirs(f"{NETNS_ETC}/{ns}", exist_ok=True)
        with open(f"{NETNS_ETC}/{ns}/resolv.conf", "w") as f:
            f.write(f"nameserver {nameserver}\n")

    def dnsmasq(self, ns: str, listen: str, records: dict[str, str], ttl_s: int = 0) -> subprocess.Popen:
        """Debian's dnsmasq inside ``ns`` on ``listen``:53, answering ``records`` (name -> IPv4) and nothing else.

        ``ttl_s`` 0 (dnsmasq's own default for local records) makes every
        lookup ask again, the hardest case for a resolver under loss.
        Returns once it logged "started" (it binds its sockets before that).
        """
        argv = ["ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", f"--listen-address={listen}", "--bind-interfaces", "--port=53",
                f"--local-ttl={ttl_s}", "--pid-file=", "--log-facility=-", "--user=root", "--group=root",
                *(f"--host-record={name},{address}" for name, address in records.items())]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stderr.readline() if ready else ""
            seen.append(line.strip())
            if ": started," in line:
                return proc
            if not line and proc.poll() is not None:
                break
        raise RuntimeError(f"dnsmasq in {ns} did not start: {' | '.join(seen)}")

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for proc in self.processes:
            stop(proc)
        for ns in reversed(self.namespaces):  # the veth pairs go with their namespace
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(f"{NETNS_ETC}/{ns}", ignore_errors=True)
        try:
            os.unlink(self._marker)
        except FileNotFoundError:
            pass


class Office:
    """root ─ gw ─ central: the agent in the root namespace, a router ("gw") and a central host behind it.

    The DNS resolver is a server inside gw, as in an office whose router
    resolves names. ``gateway``/``central`` are the addresses the agent
    probes; ``uplink`` is gw's interface towards the agent.
    """

    def __init__(self, lab: Lab):
        self.lab = lab
        self.gw = lab.namespace("gw")
        self.central = lab.namespace("central")
        self.root_port, self.uplink = lab.link(None, self.gw, 1)
        lab.link(self.gw, self.central, 2)
        self.gateway = f"{lab.subnet(1)}.2"
        self.central_addr = f"{lab.subnet(2)}.2"
        set_sysctl("net.ipv4.ip_forward", "1", ns=self.gw)
        sh("ip", "route", "add", f"{lab.subnet(2)}.0/24", "via", self.gateway)
        sh("ip", "route", "add", "default", "via", f"{lab.subnet(2)}.1", ns=self.central)

    def drop(self, ns: str, *match: str) -> None:
        """Drop matching packets arriving in ``ns`` (everything when ``match`` is empty)."""
        sh("iptables", "-A", "INPUT", *match, "-j", "DROP", ns=ns)

    def flush(self, ns: str) -> None:
        sh("iptables", "-F", "INPUT", ns=ns)

    def uplink_down(self) -> None:
        """The office switch dies: gw's port towards the agent loses its link."""
        sh("ip", "link", "set", self.uplink, "down", ns=self.gw)

    def uplink_up(self) -> None:
        """The switch is replaced; returns once both ends report carrier (the kernel takes up to 1 s)."""
        sh("ip", "link", "set", self.uplink, "up", ns=self.gw)
        wait_link_up(self.root_port, None)
        wait_link_up(self.uplink, self.gw)


class Branch:
    """kiosk ─ gw ─ central, the agent *inside* "kiosk": a branch office whose router resolves names.

    The kiosk namespace's /etc/resolv.conf names gw's dnsmasq, so a probe
    run there (``ip netns exec``) resolves through the real system resolver
    and a real DNS server, as on site. ``siak.lab`` is the central host.
    ``line_loss`` drops a share of every packet arriving at the kiosk
    (iptables ``statistic``), so a ping shows that loss; ``dark`` makes the
    central host drop everything.
    """

    NAME = "siak.lab"

    def __init__(self, lab: Lab, ttl_s: int = 0):
        self.lab = lab
        self.kiosk = lab.namespace("kiosk")
        self.gw = lab.namespace("gw")
        self.central = lab.namespace("central")
        lab.link(self.kiosk, self.gw, 1)
        lab.link(self.gw, self.central, 2)
        self.gateway = f"{lab.subnet(1)}.2"
        self.central_addr = f"{lab.subnet(2)}.2"
        set_sysctl("net.ipv4.ip_forward", "1", ns=self.gw)
        sh("ip", "route", "add", "default", "via", self.gateway, ns=self.kiosk)
        sh("ip", "route", "add", "default", "via", f"{lab.subnet(2)}.1", ns=self.central)
        lab.resolv_conf(self.kiosk, self.gateway)
        self.dnsmasq = lab.dnsmasq(self.gw, self.gateway, {self.NAME: self.central_addr}, ttl_s)

    def line_loss(self, share: float) -> None:
        sh("iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", f"{share}",
           "-j", "DROP", ns=self.kiosk)

    def line_clean(self) -> None:
        sh("iptables", "-F", "INPUT", ns=self.kiosk)

    def dropped(self) -> int:
        """Packets the loss rule dropped so far (proof that the loss was really applied)."""
        out = sh("iptables", "-L", "INPUT", "-n", "-v", "-x", ns=self.kiosk)
        return sum(int(line.split()[0]) for line in out.splitlines() if "statistic" in line)

    def dark(self, ns: str | None = None) -> None:
        sh("iptables", "-A", "INPUT", "-j", "DROP", ns=ns or self.central)

    def light(self, ns: str | None = None) -> None:
        sh("iptables", "-F", "INPUT", ns=ns or self.central)

    def line_dark(self) -> None:
        """The branch's line fails at the router: it neither answers nor forwards anything."""
        sh("iptables", "-A", "INPUT", "-j", "DROP", ns=self.gw)
        sh("iptables", "-A", "FORWARD", "-j", "DROP", ns=self.gw)

    def line_light(self) -> None:
        sh("iptables", "-F", "INPUT", ns=self.gw)
        sh("iptables", "-F", "FORWARD", ns=self.gw)

    def resolver_dark(self) -> None:
        """The router stops answering DNS (it still routes and answers pings)."""
        sh("iptables", "-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP", ns=self.gw)

    def resolver_light(self) -> None:
        sh("iptables", "-F", "INPUT", ns=self.gw)


def agent_config(workdir: str, branch: Branch, port: int, interval_s: float) -> dict:
    """The branch kiosk's file: MQTT off, one target of each kind, the services needing some of them."""
    from support.config import LAB_OFFICE, MQTT_OFF, kiosk_config, service  # a server run as a script needs none

    services = [service("A", 150, pins=True, needs_targets=["siak", "central-tcp"]),
                service("B", 150, pins=True, needs_targets=["gw"])]
    name = branch.NAME
    return kiosk_config(workdir, services, office=LAB_OFFICE, printer={"backend": "dummy"},
                        log={"level": "warning", "format": "json"},
                        agent={"data_dir": f"{workdir}/agent", "probe_interval_s": interval_s}, mqtt=MQTT_OFF,
                        targets=[{"name": "gw", "kind": "icmp", "role": "gateway", "host": branch.gateway},
                                 {"name": "dns", "kind": "dns", "role": "dns", "host": branch.gateway,
                                  "query_name": name},
                                 {"name": "central", "kind": "icmp", "role": "central", "host": branch.central_addr},
                                 {"name": "central-tcp", "kind": "tcp", "role": "central", "host": name, "port": port},
                                 {"name": "siak", "kind": "http", "role": "central",
                                  "url": f"http://{name}:{port}/health"}])


KINDS = {"gw": "icmp", "dns": "dns", "central": "icmp", "central-tcp": "tcp by name", "siak": "http by name"}


class AgentRun:
    """The real ``edge-agent run`` inside the branch's kiosk namespace, MQTT off, every round it writes kept.

    The agent replaces ``network.json`` after every round (for the lobby
    page); a thread reads it every 0.2 s, well inside the 2 s between
    rounds, and keeps each new round's report.
    """

    def __init__(self, branch: Branch, workdir: str, interval_s: float = 10.0):
        import json
        import threading

        self._json = json
        _, port = branch.lab.serve(branch.central, "http")
        from support.config import write

        self.config = str(write(os.path.join(workdir, "kiosk.toml"), agent_config(workdir, branch, port, interval_s)))
        self.network_json = os.path.join(workdir, "agent", "network.json")
        self.outages_db = os.path.join(workdir, "agent", "outages.sqlite3")
        self.stderr = open(os.path.join(workdir, "agent.log"), "w")  # noqa: SIM115 (closed in stop)
        repo = REPO
        self.proc = subprocess.Popen(["ip", "netns", "exec", branch.kiosk, sys.executable, "-m", "edge_agent",
                                      "--config", self.config, "run"], cwd=repo, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, env={**os.environ, "PYTHONPATH": repo})
        branch.lab.processes.append(self.proc)
        self.reports: list[dict] = []
        self._seen = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="network-json")
        self._thread.start()

    def _watch(self) -> None:
        last = None
        while not self._stop.wait(0.2):
            try:
                with open(self.network_json, encoding="utf-8") as f:
                    report = self._json.load(f)
            except (OSError, ValueError):
                continue  # not written yet
            if report.get("started") != last:
                last = report.get("started")
                with self._seen:
                    self.reports.append(report)
                    self._seen.notify_all()

    def wait_rounds(self, n: int, timeout_s: float) -> None:
        """Wait until ``n`` rounds were seen; the agent's log tail in the error if they never come."""
        deadline = time.monotonic() + timeout_s
        with self._seen:
            while len(self.reports) < n:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stderr.flush()
                    with open(self.stderr.name) as f:
                        tail = f.read()[-2000:]
                    raise RuntimeError(f"{len(self.reports)} of {n} rounds within {timeout_s} s; agent log: {tail}")
                self._seen.wait(1.0)  # woken by each new round; the timeout only rechecks the process

    def transitions(self) -> list[dict]:
        """Every transition the agent reported, in order (each report lists its round's)."""
        return [t for report in self.reports for t in report.get("transitions", [])]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        stop(self.proc)
        self.stderr.close()


def wait_link_up(ifname: str, ns: str | None, timeout_s: float = 5.0) -> None:
    """Poll the interface's operational state until it is UP (there is no event to wait on from here)."""
    from support.wait import wait_until

    wait_until(lambda: "state UP" in sh("ip", "-o", "link", "show", "dev", ifname, ns=ns), timeout_s,
               what=f"{ifname} in {ns or 'the root namespace'} up", every_s=0.02)


def without_net_raw(ping_group_range: str, *argv: str) -> str:
    """``argv``'s stdout, run in a fresh namespace with this ping_group_range and without CAP_NET_RAW."""
    with Lab() as lab:
        ns = lab.namespace("noraw")
        set_sysctl("net.ipv4.ping_group_range", ping_group_range, ns=ns)
        return sh("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", *argv, ns=ns)


def set_sysctl(key: str, value: str, ns: str) -> None:
    """Set a network sysctl inside ``ns`` (its /proc/sys/net is the namespace's own; no procps needed)."""
    sh("sh", "-c", f"printf '%s' '{value}' > /proc/sys/{key.replace('.', '/')}", ns=ns)


def server_argv(kind: str, *args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), kind, *args]


def spawn(argv: list[str]) -> tuple[subprocess.Popen, int]:
    """Start a server process and wait (at most READY_TIMEOUT_S) for its "ready PORT" line."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    words = proc.stdout.readline().split() if ready else []
    if len(words) != 2 or words[0] != "ready":
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"{' '.join(argv)} did not get ready: {words} {err.strip()}")
    return proc, int(words[1])


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def make_certs(directory, ip: str, days: int = 20) -> tuple[str, str, str]:
    """A CA and a server certificate for ``ip`` signed by it, valid ``days``; (ca, cert, key) paths."""
    d = str(directory)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "30",
       "-subj", "/CN=Antrean test CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sh("openssl", "req", *ec, "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr", "-subj", f"/CN={ip}")
    with open(f"{d}/server.ext", "w") as f:
        f.write(f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    sh("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
       "-CAcreateserial", "-out", f"{d}/server.pem", "-days", str(days), "-extfile", f"{d}/server.ext")
    return f"{d}/ca.pem", f"{d}/server.pem", f"{d}/server.key"


def _reserve_block() -> tuple[int, str]:
    os.makedirs(MARKER_DIR, exist_ok=True)
    with open(os.path.join(MARKER_DIR, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = sh("ip", "-o", "-4", "addr", "show") + sh("ip", "-4", "route", "show", "table", "all")
        for block in BLOCKS:
            marker = os.path.join(MARKER_DIR, str(block))
            if f"10.{block}." in used or (os.path.exists(marker) and _owner_alive(marker)):
                continue
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            return block, marker
    raise RuntimeError(f"no free 10.B.0.0/16 block for a test network (B in {BLOCKS.start}..{BLOCKS.stop - 1})")


def _owner_alive(marker: str) -> bool:
    try:
        with open(marker) as f:
            os.kill(int(f.read().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------- servers, run inside a namespace


def serve_http(args) -> None:
    import http.server
    import ssl
    import time

    gets = []  # list.append is atomic: the handler threads share it

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            if self.path == "/count":  # how many other GETs arrived, for the tests of hedged requests
                body, status = str(len(gets)).encode(), 200
            else:
                gets.append(self.path)
                time.sleep(args.delay)  # a deliberately slow peer: how "the central server is slow" looks
                body, status = b"antrean test server\n", args.status
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", args.port), Handler)
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", server.server_address[1], flush=True)
    server.serve_forever()


def serve_dns(args) -> None:
    import threading

    from support.dns import FakeNameserver  # run as a script, tests/ is on sys.path (see the end of this file)

    server = FakeNameserver({args.name.lower(): args.address}, address="0.0.0.0", port=args.port)
    server.rcode = args.rcode or None
    print("ready", server.port, flush=True)
    threading.Event().wait()  # it answers in its own thread until the lab kills it


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    web = sub.add_parser("http")
    web.add_argument("--port", type=int, default=0)
    web.add_argument("--delay", type=float, default=0.0)
    web.add_argument("--status", type=int, default=200)
    web.add_argument("--cert")
    web.add_argument("--key")
    dns = sub.add_parser("dns")
    dns.add_argument("--port", type=int, default=0)
    dns.add_argument("--name", required=True)
    dns.add_argument("--address", required=True)
    dns.add_argument("--rcode", type=int, default=0, help="answer every query with this rcode, e.g. 2 SERVFAIL")
    args = parser.parse_args(argv)
    {"http": serve_http, "dns": serve_dns}[args.kind](args)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for support.dns
    main()
