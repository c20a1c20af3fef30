"""The request limits on a real lobby process: ``python -m lobby`` (waitress) on 127.0.0.1,
fed by raw sockets. Four concurrent 200 MB uploads once held 839 MB; now each is refused with 413
after at most the limit, and the server's memory does not follow the upload."""

import select
import socket
import subprocess
import sys
import threading

import pytest
from support.config import BASE_TOML
from test_lobby import PW_HASH
from test_lobby_support import LOBBY_TOML

from lobby.app import MAX_BODY_BYTES

MB = 1024 * 1024
UPLOAD = 200 * MB
# What a client can push before it sees the 413: the limit plus what the two loopback sockets buffer.
ACCEPTED_AT_MOST = 4 * MB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lobby(tmp_path):
    """The lobby as its own process; yields (port, pid)."""
    port = free_port()
    config = tmp_path / "kiosk.toml"
    config.write_text(BASE_TOML.format(data_dir=tmp_path)
                      + LOBBY_TOML.format(hash=PW_HASH).replace("[lobby]\n", f"[lobby]\nport = {port}\n"))
    proc = subprocess.Popen([sys.executable, "-m", "lobby", "--config", str(config)],
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # the server logs its URL once it listens
            if "lobby page on" in line:
                break
        else:
            pytest.fail(f"the lobby exited with {proc.wait()} before serving")
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its log pipe drained
        yield port, proc.pid
    finally:
        proc.kill()
        proc.wait()


def peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def upload(port: int, chunked: bool, total: int = UPLOAD) -> tuple[str, int]:
    """POST ``total`` bytes to the login form, stopping as soon as the server answers;
    return (status line, body bytes sent)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    s.sendall(f"POST /staff/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
              f"application/x-www-form-urlencoded\r\n{length}\r\n\r\n".encode())
    piece = b"a" * (64 * 1024)
    if chunked:
        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    sent = 0
    try:
        while sent < total:
            readable, writable, _ = select.select([s], [s], [], 60)
            if readable or not writable:
                break
            sent += s.send(piece)
        answer = s.recv(200).decode("latin-1")
    except (BrokenPipeError, ConnectionResetError) as exc:
        answer = f"connection closed: {exc}"
    finally:
        s.close()
    return answer.split("\r\n")[0], sent


def test_four_concurrent_200_mb_uploads_are_refused_after_the_limit(lobby):
    port, pid = lobby
    before = peak_rss_kb(pid)
    results = [None] * 4

    def run(i):
        results[i] = upload(port, chunked=i % 2 == 1)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    grown_mb = (peak_rss_kb(pid) - before) / 1024
    print(f"\nbody bytes sent before the 413 (limit {MAX_BODY_BYTES}): {[sent for _, sent in results]}; "
          f"server peak RSS grew by {grown_mb:.1f} MB")
    for status, sent in results:
        assert status.startswith("HTTP/1.1 413"), status
        assert sent <= ACCEPTED_AT_MOST, f"{sent} bytes of a {UPLOAD}-byte upload went in before the 413"
    assert grown_mb < 8


def test_oversized_headers_are_refused(lobby):
    port, _ = lobby
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * (64 * 1024) + b"\r\n\r\n")
        assert s.recv(200).split(b"\r\n")[0].endswith(b" 431 Request Header Fields Too Large")


def test_ordinary_forms_still_fit(lobby):
    """The limit leaves room for the largest real form: a wrong password is checked (401), not refused."""
    import http.client
    import re
    import urllib.parse

    port, _ = lobby
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/staff/login")
    r = conn.getresponse()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode()).group(1)
    body = urllib.parse.urlencode({"csrf": token, "password": "😀" * 280})  # 3.4 KB percent-encoded
    conn.request("POST", "/staff/login", body, {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert conn.getresponse().status == 401
