"""The probes: packet formats and figures without a network, then each kind against loopback servers."""

import socket
import struct
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from support import need, netns
from support.config import LAB_OFFICE, MQTT_OFF, kiosk_config, service, write
from support.dns import FakeNameserver

from edge_agent.errors import AgentConfigError
from edge_agent.probes import ProbeResult, Target, run_probe
from edge_agent.probes import icmp as icmp_probe
from edge_agent.probes._common import checksum, exchange, figures
from edge_agent.probes.dnswire import DnsFormatError, build_query, encode_name, parse_response

NOW = 1_795_000_000.0


# ------------------------------------------------------------------ targets


def test_target_takes_the_kinds_defaults():
    ping = Target(name="gw", kind="icmp", host="10.0.0.1")
    assert (ping.count, ping.timeout_s, ping.spacing_s) == (20, 1.0, 0.05)
    assert ping.budget_s == pytest.approx(19 * 0.05 + 1.0)
    dns = Target(name="ns", kind="dns", host="10.0.0.1", query_name="siak.test")
    assert dns.port == 53
    web = Target(name="c", kind="http", url="https://central.test/")
    assert (web.count, web.spacing_s, web.timeout_s) == (2, 0.5, 2.5)
    assert web.budget_s == pytest.approx(3.0 + 1.5)  # a hedged GET after 0.5 s; the name's resolution first
    assert Target(name="c", kind="http", url="https://10.0.0.2/").budget_s == pytest.approx(3.0)


def test_target_errors_name_the_value_and_the_fix():
    with pytest.raises(AgentConfigError) as caught:
        Target(name="c", kind="tcp", role="boss", count=0, degraded_loss=1.5)
    text = str(caught.value)
    assert "role 'boss' is unknown; use one of: gateway" in text
    assert "needs host" in text and "needs port" in text
    assert "count 0 must be a whole number from 1 to 50" in text
    assert "degraded_loss 1.5" in text
    with pytest.raises(AgentConfigError, match="kind 'smtp' is unknown; use one of: dns, http, icmp, tcp"):
        Target(name="x", kind="smtp", host="a")
    with pytest.raises(AgentConfigError, match="url 'ftp://x' must start with http:// or https://"):
        Target(name="x", kind="http", url="ftp://x")


# ------------------------------------------------------------------ figures of a round


def test_figures_loss_median_and_jitter():
    got = figures([0.010, 0.012, None, 0.011, 0.015])
    assert got["loss"] == pytest.approx(0.2)
    assert got["rtt_ms"] == pytest.approx(11.5)
    # consecutive replies 10, 12, 11, 15 ms: |2|, |1|, |4| -> mean 2.333
    assert got["jitter_ms"] == pytest.approx(7 / 3)


def test_figures_of_a_round_without_replies_or_with_one():
    assert figures([None, None]) == {"loss": 1.0, "rtt_ms": None, "jitter_ms": None}
    assert figures([0.004, None]) == {"loss": 0.5, "rtt_ms": pytest.approx(4.0), "jitter_ms": None}


def test_exchange_matches_replies_and_ignores_strays():
    """A peer answers requests 0 and 2 only, and sends a stray datagram and a duplicate first."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(server.getsockname())

    def peer():
        for _ in range(3):
            data, addr = server.recvfrom(100)
            if data in (b"req0", b"req2"):
                server.sendto(b"junk", addr)
                server.sendto(b"rep" + data[3:], addr)
                server.sendto(b"rep" + data[3:], addr)  # a duplicate must not count twice

    thread = threading.Thread(target=peer)
    thread.start()

    def parse(data, _addr):
        return int(data[3:]) if data.startswith(b"rep") else None

    try:
        rtts, errors = exchange(client, lambda i: client.send(b"req%d" % i), parse,
                                count=3, spacing_s=0.01, timeout_s=0.3)
    finally:
        thread.join()
        server.close()
        client.close()
    assert [r is not None for r in rtts] == [True, False, True]
    assert errors == []


# ------------------------------------------------------------------ DNS packets


def test_dns_query_bytes():
    query = build_query(0x1234, "siak.kemendagri.test")
    assert query[:12] == bytes.fromhex("1234 0100 0001 0000 0000 0000")
    assert query[12:] == b"\x04siak\x0akemendagri\x04test\x00" + b"\x00\x01\x00\x01"
    assert encode_name("a.bc.") == b"\x01a\x02bc\x00"


def test_dns_names_that_cannot_be_asked():
    with pytest.raises(DnsFormatError, match="label '' must be 1 to 63 bytes"):
        encode_name("a..b")
    with pytest.raises(DnsFormatError, match="label 'x{64}' must be 1 to 63"):
        encode_name("x" * 64 + ".test")


def _response(qid, rcode, answers=b"", ancount=0):
    question = b"\x04siak\x04test\x00\x00\x01\x00\x01"
    return struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, ancount, 0, 0) + question + answers


def test_dns_response_with_cname_and_compressed_names():
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 300, 6) + b"\x03www\xc0\x0c"
    a_rec = b"\xc0\x22" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([10, 2, 3, 4])
    answer = parse_response(_response(7, 0, cname + a_rec, ancount=2))
    assert (answer.qid, answer.rcode_name, answer.addresses) == (7, "NOERROR", ("10.2.3.4",))


def test_dns_error_codes_and_broken_messages():
    assert parse_response(_response(9, 3)).rcode_name == "NXDOMAIN"
    assert parse_response(_response(9, 2)).rcode_name == "SERVFAIL"
    with pytest.raises(DnsFormatError, match="shorter than its 12-byte header"):
        parse_response(b"\x00\x01")
    with pytest.raises(DnsFormatError, match="is a query, not a response"):
        parse_response(build_query(1, "a.test"))
    cut = _response(7, 0, b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + b"\x0a", ancount=1)
    with pytest.raises(DnsFormatError, match="record data cut short"):
        parse_response(cut)


# ------------------------------------------------------------------ ICMP packets


def test_icmp_echo_request_has_a_valid_checksum():
    packet = icmp_probe.echo_request(0xBEEF, 7, b"antrean!")
    assert packet[0] == 8 and struct.unpack("!HH", packet[4:8]) == (0xBEEF, 7)
    assert checksum(packet) == 0  # a correct checksum sums to zero
    ip_header = bytes([0x45]) + bytes(19)
    assert icmp_probe.parse_icmp(ip_header + packet, has_ip_header=True)[:3] == (8, 0xBEEF, 7)
    assert icmp_probe.parse_icmp(b"\x45" + bytes(10), has_ip_header=True) is None


def test_icmp_not_permitted_is_inconclusive_and_says_how_to_fix(monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(icmp_probe.socket, "socket", refuse)
    result = run_probe(Target(name="gw", kind="icmp", host="127.0.0.1"), NOW)
    assert result.inconclusive and not result.ok
    assert "ping_group_range" in result.detail and "CAP_NET_RAW" in result.detail


def _icmp_allowed() -> bool:
    try:
        icmp_probe.open_socket()[0].close()
        return True
    except icmp_probe.IcmpNotPermitted:
        return False


def test_icmp_loopback():
    need(_icmp_allowed(), "this process may open neither an unprivileged nor a raw ICMP socket")
    result = run_probe(Target(name="lo", kind="icmp", host="127.0.0.1", count=5, spacing_s=0.02), NOW)
    assert result.ok and result.loss == 0 and result.detail == "5/5 replies"
    assert 0 < result.rtt_ms < 100 and result.jitter_ms is not None and result.at == NOW


# ------------------------------------------------------------------ TCP, DNS, HTTP(S) on loopback


@pytest.fixture
def server():
    procs = []

    def start(kind, *args):
        proc, port = netns.spawn(netns.server_argv(kind, *args))
        procs.append(proc)
        return port

    yield start
    for proc in procs:
        netns.stop(proc)


@pytest.fixture
def silent_udp():
    """A UDP port that receives and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_tcp_connects_and_is_refused():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    good = run_probe(Target(name="c", kind="tcp", host="127.0.0.1", port=port, spacing_s=0.01), NOW)
    listener.close()
    assert good.ok and good.detail == "3/3 connected" and good.loss == 0 and good.rtt_ms < 100
    bad = run_probe(Target(name="c", kind="tcp", host="127.0.0.1", port=port, spacing_s=0.01), NOW)
    assert not bad.ok and bad.detail == "0/3 connected (refused)" and bad.loss == 1


def test_dns_answer_nxdomain_servfail_and_silence(server, silent_udp):
    port = server("dns", "--name", "siak.test", "--address", "10.9.8.7")
    ask = dict(kind="dns", host="127.0.0.1", port=port, spacing_s=0.01, timeout_s=0.5)
    good = run_probe(Target(name="ns", query_name="SIAK.test", **ask), NOW)
    assert good.ok and good.detail == "NOERROR 10.9.8.7, 5/5 answers" and good.loss == 0
    missing = run_probe(Target(name="ns", query_name="nope.test", **ask), NOW)
    assert not missing.ok and missing.detail.startswith("NXDOMAIN for nope.test")
    failing = server("dns", "--name", "siak.test", "--address", "10.9.8.7", "--rcode", "2")
    broken = run_probe(Target(name="ns", query_name="siak.test", **dict(ask, port=failing)), NOW)
    assert not broken.ok and broken.detail.startswith("SERVFAIL for siak.test")
    started = time.monotonic()
    mute = run_probe(Target(name="ns", query_name="siak.test", **dict(ask, port=silent_udp, timeout_s=0.3)), NOW)
    assert not mute.ok and mute.detail == "no answer to 5 queries within 0.3 s (timeout)" and mute.loss == 1
    assert time.monotonic() - started < 0.3 + 4 * 0.01 + 0.3


def test_http_status_and_timeout(server):
    port = server("http")
    url = f"http://127.0.0.1:{port}/health"
    good = run_probe(Target(name="c", kind="http", url=url), NOW)
    assert good.ok and good.detail == "HTTP 200" and good.rtt_ms > 0 and good.cert_days_left is None
    wrong = run_probe(Target(name="c", kind="http", url=url, expect_status=204), NOW)
    assert not wrong.ok and wrong.detail == "HTTP 200 (expected 204)"
    slow = server("http", "--delay", "1", "--status", "503")
    late = run_probe(Target(name="c", kind="http", url=f"http://127.0.0.1:{slow}/", timeout_s=0.3, count=1), NOW)
    assert not late.ok and late.detail == "timeout after 0.3 s"
    answered = run_probe(Target(name="c", kind="http", url=f"http://127.0.0.1:{slow}/", timeout_s=2), NOW)
    assert not answered.ok and answered.detail == "HTTP 503 (expected 200)" and answered.rtt_ms >= 1000


def gets(port):
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as answer:
        return int(answer.read())


def test_http_hedges_a_second_get_only_when_the_first_is_slow(server):
    fast = server("http")
    for _ in range(3):
        assert run_probe(Target(name="c", kind="http", url=f"http://127.0.0.1:{fast}/"), NOW).ok
    assert gets(fast) == 3  # one GET per round when the answer comes within spacing_s
    slow = server("http", "--delay", "1")
    result = run_probe(Target(name="c", kind="http", url=f"http://127.0.0.1:{slow}/", timeout_s=2), NOW)
    assert result.ok and 1000 <= result.rtt_ms < 2000 and gets(slow) == 2  # hedged after 0.5 s
    listener = socket.create_server(("127.0.0.1", 0))
    closed = listener.getsockname()[1]
    listener.close()
    started = time.monotonic()
    refused = run_probe(Target(name="c", kind="http", url=f"http://127.0.0.1:{closed}/"), NOW)
    assert refused.detail == "2 tries: refused" and time.monotonic() - started < 0.4  # no wait to hedge


def test_https_certificate_days_and_trust(server, tmp_path):
    ca, cert, key = netns.make_certs(tmp_path, "127.0.0.1", days=20)
    port = server("http", "--cert", cert, "--key", key)
    url = f"https://127.0.0.1:{port}/"
    good = run_probe(Target(name="c", kind="http", url=url, ca_file=ca), time.time())
    assert good.ok and good.detail == "HTTP 200" and good.cert_days_left in (19, 20)
    later = run_probe(Target(name="c", kind="http", url=url, ca_file=ca), time.time() + 15 * 86400)
    assert later.cert_days_left in (4, 5)
    untrusted = run_probe(Target(name="c", kind="http", url=url), time.time())  # the system's CAs only
    assert not untrusted.ok and untrusted.detail.startswith("TLS certificate not trusted:")
    assert not untrusted.inconclusive
    missing = run_probe(Target(name="c", kind="http", url=url, ca_file=str(tmp_path / "nope.pem")), NOW)
    assert missing.inconclusive and "fix the target's ca_file" in missing.detail


# ------------------------------------------------------------------ ICMP socket kinds, for real


@pytest.fixture
def namespaces():
    reason = netns.unavailable()  # checked when the test runs, not while tests are collected
    need(reason is None, reason or "")


needs_netns = pytest.mark.usefixtures("namespaces")

PING_IN_NS = """
import time
from types import SimpleNamespace
from edge_agent.probes import ProbeResult, Target, run_probe
from edge_agent.probes.icmp import IcmpNotPermitted, open_socket
try:
    print(open_socket()[1])
except IcmpNotPermitted:
    print("none")
r = run_probe(Target(name="lo", kind="icmp", host="127.0.0.1", count=5, spacing_s=0.02), time.time())
print(r.ok, r.inconclusive, r.detail)
"""


@needs_netns
@pytest.mark.parametrize("ping_group_range, expected", [
    ("0 2147483647", ["dgram", "True False 5/5 replies"]),  # unprivileged ping allowed for every group
    ("1 0", ["none", "False True ICMP is not permitted"]),  # the kernel's default: nobody
])
def test_icmp_socket_kinds_without_cap_net_raw(ping_group_range, expected):
    """Inside a fresh namespace (its own ping_group_range) and without CAP_NET_RAW."""
    out = netns.without_net_raw(ping_group_range, sys.executable, "-c", PING_IN_NS).splitlines()
    assert out[0] == expected[0]
    assert out[1].startswith(expected[1])


def test_a_result_as_json_is_rounded():
    out = ProbeResult(ok=True, at=NOW, detail="3/5 replies", rtt_ms=1.23456, loss=0.4, jitter_ms=0.056789).to_dict()
    assert out == {"ok": True, "at": NOW, "detail": "3/5 replies", "rtt_ms": 1.23, "loss": 0.4, "jitter_ms": 0.06,
                   "cert_days_left": None, "inconclusive": False}


# ------------------------------------------------------------------ host names (probes.resolve)


class Clock:
    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        return time.monotonic() + self.offset


@pytest.fixture
def names(tmp_path, monkeypatch):
    """A nameserver for siak.lab (and siak.branch.lab) named by a resolv.conf and hosts file of the test's own."""
    from edge_agent.probes import resolve

    server = FakeNameserver({"siak.lab": "127.0.0.1", "siak.branch.lab": "127.0.0.2"})
    conf, hosts = tmp_path / "resolv.conf", tmp_path / "hosts"
    conf.write_text("# test\nnameserver 127.0.0.1\nsearch branch.lab\n")
    hosts.write_text("127.0.0.9  pinned.lab pinned\n::1 siak.lab\n")
    monkeypatch.setattr(resolve, "RESOLV_CONF", str(conf))
    monkeypatch.setattr(resolve, "HOSTS", str(hosts))
    monkeypatch.setattr(resolve, "NAMESERVER_PORT", server.port)
    resolve.forget()
    yield SimpleNamespace(server=server, conf=conf, resolve=resolve)
    server.close()
    resolve.forget()


def timed(fn, *args):
    t0 = time.monotonic()
    out = fn(*args)
    return out, time.monotonic() - t0


def test_a_name_is_resolved_and_kept_for_its_ttl(names):
    clock = Clock()
    assert names.resolve.resolve("siak.lab", clock) == names.resolve.Resolution("127.0.0.1")
    assert names.resolve.resolve("SIAK.lab.", clock).address == "127.0.0.1" and names.server.queries == 1
    clock.offset = 61  # past the 60 s TTL
    assert names.resolve.resolve("siak.lab", clock).address == "127.0.0.1" and names.server.queries == 2
    assert names.resolve.resolve("10.1.2.3").address == "10.1.2.3" and names.server.queries == 2


def test_lost_replies_are_asked_again_within_the_budget(names):
    names.server.drop = 2  # glibc would wait 5 s after the first
    found, took = timed(names.resolve.resolve, "siak.lab")
    assert found.address == "127.0.0.1" and names.server.queries == 3
    assert took < 2 * names.resolve.SPACING_S + 0.25, took


def test_a_silent_resolver_falls_back_on_the_last_answer_and_says_so(names):
    clock = Clock()
    assert names.resolve.resolve("siak.lab", clock).address == "127.0.0.1"
    names.server.silent, clock.offset = True, 100
    found, took = timed(names.resolve.resolve, "siak.lab", clock)
    assert found.address == "127.0.0.1"
    assert found.note == "no answer from 127.0.0.1 within 1.5 s; used 127.0.0.1, resolved 100 s ago"
    assert names.resolve.BUDGET_S <= took < names.resolve.BUDGET_S + 0.3
    assert names.server.queries == 1 + names.resolve.TRIES
    clock.offset = names.resolve.STALE_S + 1  # too old to stand in
    assert names.resolve.resolve("siak.lab", clock) == names.resolve.Resolution(
        None, "cannot resolve siak.lab: no answer from 127.0.0.1 within 1.5 s")


def test_servfail_is_no_verdict_on_the_name_so_the_last_answer_stands_in(names):
    clock = Clock()
    assert names.resolve.resolve("siak.lab", clock).address == "127.0.0.1"
    names.server.rcode, clock.offset = 2, 61
    found, took = timed(names.resolve.resolve, "siak.lab", clock)
    assert found.address == "127.0.0.1" and found.note == "SERVFAIL from 127.0.0.1; used 127.0.0.1, resolved 61 s ago"
    assert took < names.resolve.BUDGET_S  # every query was answered: nothing left to wait for


def test_no_such_name_fails_at_once_and_is_not_covered_by_an_old_answer(names):
    clock = Clock()
    assert names.resolve.resolve("siak.lab", clock).address == "127.0.0.1"
    del names.server.records["siak.lab"]
    clock.offset = 61
    found, took = timed(names.resolve.resolve, "siak.lab", clock)
    assert found == names.resolve.Resolution(None, "name siak.lab does not exist (NXDOMAIN) at 127.0.0.1")
    assert took < 0.25


def test_hosts_file_search_domains_and_a_second_nameserver(names):
    assert names.resolve.resolve("pinned.lab").address == "127.0.0.9" and names.server.queries == 0
    assert names.resolve.resolve("siak").address == "127.0.0.2"  # siak.branch.lab, from the search line
    second = FakeNameserver({"other.lab": "127.0.0.5"}, address="127.0.0.2", port=names.server.port)
    try:
        names.conf.write_text("nameserver 127.0.0.3\nnameserver 127.0.0.2\n")  # the first one is dead
        found, took = timed(names.resolve.resolve, "other.lab")
        assert found.address == "127.0.0.5" and names.resolve.SPACING_S <= took < 2 * names.resolve.SPACING_S
    finally:
        second.close()


def test_probes_of_targets_named_by_host_use_the_resolver(names, server):
    port = server("http")
    web = run_probe(Target(name="w", kind="http", url=f"http://siak.lab:{port}/"), NOW)
    assert web.ok and web.detail == "HTTP 200", web
    tcp = run_probe(Target(name="t", kind="tcp", host="siak.lab", port=port), NOW)
    assert tcp.ok and tcp.detail == "3/3 connected", tcp
    names.server.silent = True
    names.resolve.forget()
    dark = run_probe(Target(name="w", kind="http", url=f"http://nowhere.lab:{port}/"), NOW)
    assert not dark.ok and dark.detail == "cannot resolve nowhere.lab: no answer from 127.0.0.1 within 1.5 s"


def probe_config(data_dir) -> dict:
    """A kiosk file with MQTT off and two loopback targets: one pinged, one closed TCP port."""
    return kiosk_config(data_dir, [service("A", 10, pins=True)], office=LAB_OFFICE, printer={"backend": "dummy"},
                        mqtt=MQTT_OFF, targets=[{"name": "lo-ping", "kind": "icmp", "host": "127.0.0.1"},
                                                {"name": "lo-closed", "kind": "tcp", "host": "127.0.0.1", "port": 1}])


@needs_netns
def test_edge_agent_probe_says_inconclusive_where_icmp_may_not_run(tmp_path):
    """The real command, in a namespace where nobody may ping and without CAP_NET_RAW (the docs' example)."""
    config = write(tmp_path / "kiosk.toml", probe_config(tmp_path))
    out = netns.without_net_raw("1 0", sys.executable, "-m", "edge_agent", "--config", str(config), "probe")
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:3]}
    assert rows == {"lo-ping": ["unknown", "inconclusive"], "lo-closed": ["unknown", "FAIL"]}, out
    assert out.splitlines()[0].split()[:3] == ["target", "state", "result"]
