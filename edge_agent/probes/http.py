"""HTTP(S) GET with a deadline and an expected status; for https, the certificate's days to expiry.

Redirects are not followed: the status the server gives is the answer.
Up to ``Target.count`` GETs are *hedged*: the next one starts when the
previous has no answer after ``spacing_s``, or at once when it failed on
the network (timeout, refused, reset). The first answer ends the round; an
answer, even a wrong status, or a certificate that is not trusted, is
final. So a healthy server gets one GET per round, a lossy line gets a
second chance, and a dark host fails the round within
``(count - 1) * spacing_s + timeout_s``.

A host name in the URL is resolved once per round, before the first GET,
by :mod:`edge_agent.probes.resolve` (our budget and retries; the last
answer while the resolver is silent); every GET of the round connects to
that address and still sends the name (Host header, TLS server name).
"""

import functools
import http.client
import math
import queue
import socket
import ssl
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

from edge_agent.probes import ProbeResult, Target
from edge_agent.probes._common import note, reason, seconds, with_note
from edge_agent.probes.resolve import resolve

USER_AGENT = "antrean-edge-agent"


class _Final(Exception):
    """A failure that another try would not change (certificate not trusted, broken HTTP)."""


def probe(target: Target, at: float) -> ProbeResult:
    parts = urlsplit(target.url)
    try:
        context = _context(target.ca_file) if parts.scheme == "https" else None
    except (OSError, ssl.SSLError) as exc:
        detail = f"CA file {target.ca_file!r} cannot be used ({reason(exc)}); fix the target's ca_file"
        return ProbeResult(ok=False, at=at, inconclusive=True, detail=detail)
    where = resolve(parts.hostname or "")
    if where.address is None:
        return ProbeResult(ok=False, at=at, detail=where.note)
    result = _hedged(parts, context, where.address, target, at)
    return replace(result, detail=with_note(result.detail, where.note))


def _hedged(parts, context, address: str, target: Target, at: float) -> ProbeResult:
    outcomes: queue.SimpleQueue = queue.SimpleQueue()
    errors: list[str] = []
    started = finished = 0
    t0 = time.monotonic()
    while finished < target.count:
        now = time.monotonic()
        if started < target.count and (started == finished or now >= t0 + started * target.spacing_s):
            threading.Thread(target=_attempt, args=(parts, context, address, target, at, outcomes), daemon=True,
                             name=f"http-{target.name}").start()
            started += 1
            continue
        hedge_in = t0 + started * target.spacing_s - now if started < target.count else None
        try:
            kind, value = outcomes.get(timeout=hedge_in)
        except queue.Empty:
            continue  # time to hedge
        finished += 1
        if kind == "answer":
            status, rtt_s, days = value
            ok = status == target.expect_status
            detail = f"HTTP {status}" + ("" if ok else f" (expected {target.expect_status})")
            return ProbeResult(ok=ok, at=at, detail=detail, rtt_ms=rtt_s * 1000, cert_days_left=days)
        if kind == "final":
            return ProbeResult(ok=False, at=at, detail=value)
        note(errors, value)
    tries = f"{target.count} tries: " if target.count > 1 else ""
    return ProbeResult(ok=False, at=at, detail=tries + ", ".join(errors))


def _attempt(parts, context, address: str, target: Target, at: float, outcomes) -> None:
    """One GET; puts ("answer", (status, rtt_s, days)), ("final", text) or ("retry", text) on ``outcomes``."""
    try:
        outcomes.put(("answer", _get(parts, context, address, target, at)))
    except _Final as exc:
        outcomes.put(("final", str(exc)))
    except (OSError, http.client.HTTPException) as exc:
        outcomes.put(("retry", reason(exc, target.timeout_s)))
    except Exception as exc:  # a bug: still answer, or the round would wait for nothing
        outcomes.put(("final", f"probe error: {exc!r}"))


@functools.lru_cache(maxsize=8)
def _context(ca_file: str | None) -> ssl.SSLContext:
    # Loading a CA bundle costs tens of ms on a Pi: once per file, not once per round.
    return ssl.create_default_context(cafile=ca_file)


def _get(parts, context, address: str, target: Target, at: float):
    deadline = time.monotonic() + target.timeout_s
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if context is None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=target.timeout_s)
    else:
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=target.timeout_s, context=context)
    # http.client connects through this attribute: to the address resolved for the round, while the
    # name stays in the Host header and the TLS server name (so the certificate is checked for the name).
    conn._create_connection = lambda where, *args: socket.create_connection((address, where[1]), *args)
    t0 = time.monotonic()
    try:
        _connect(conn)
        days = _cert_days(conn.sock, at) if context is not None else None
        _left(conn, deadline, target.timeout_s)
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        _left(conn, deadline, target.timeout_s)
        response = conn.getresponse()
        return response.status, time.monotonic() - t0, days
    except http.client.HTTPException as exc:
        if isinstance(exc, OSError):  # RemoteDisconnected: the network's doing, worth another try
            raise
        raise _Final(f"not an HTTP answer ({type(exc).__name__}: {exc})") from exc
    finally:
        conn.close()


def _connect(conn) -> None:
    try:
        conn.connect()
    except ssl.SSLCertVerificationError as exc:
        raise _Final(f"TLS certificate not trusted: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise _Final(f"TLS handshake failed: {exc.reason or exc}") from exc


def _left(conn, deadline: float, timeout_s: float) -> None:
    """Shrink the socket timeout to what is left of the request's deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"timeout after {seconds(timeout_s)} s")
    conn.sock.settimeout(left)


def _cert_days(sock, at: float) -> int | None:
    not_after = (sock.getpeercert() or {}).get("notAfter")
    if not not_after:
        return None
    return math.floor((ssl.cert_time_to_seconds(not_after) - at) / 86400)
