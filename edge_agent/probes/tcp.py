"""TCP connect time to host:port: a few staggered connects per round, none of them sending data.

Each connect has its own timeout; inside it the kernel retransmits a lost
SYN after 1 s, so with the default 2 s timeout one connect survives one lost
packet, and three staggered connects make a round robust against random
loss. The round is ok when enough of them connect (``Target.fail_loss``).
A host name is resolved once per round by :mod:`edge_agent.probes.resolve`.
"""

import errno
import os
import selectors
import socket
import time

from edge_agent.probes import ProbeResult, Target
from edge_agent.probes._common import figures, note, reason, seconds, with_note
from edge_agent.probes.resolve import resolve


def probe(target: Target, at: float) -> ProbeResult:
    where = resolve(target.host)
    if where.address is None:
        return ProbeResult(ok=False, at=at, detail=where.note, loss=1.0)
    family = socket.AF_INET6 if ":" in where.address else socket.AF_INET
    rtts, errors = connect_round(family, (where.address, target.port), target.count, target.spacing_s,
                                 target.timeout_s)
    fig = figures(rtts)
    got = sum(r is not None for r in rtts)
    detail = f"{got}/{len(rtts)} connected"
    if errors:
        detail += f" ({', '.join(errors)})"
    return ProbeResult(ok=fig["loss"] < target.fail_loss, at=at, detail=with_note(detail, where.note), **fig)


def connect_round(family, address, count: int, spacing_s: float, timeout_s: float,
                  clock=time.monotonic) -> tuple[list[float | None], list[str]]:
    """Start ``count`` connects ``spacing_s`` apart; each one's connect time in seconds, or None."""
    rtts: list[float | None] = [None] * count
    errors: list[str] = []
    pending: dict[socket.socket, tuple[int, float]] = {}
    start, nxt = clock(), 0
    with selectors.DefaultSelector() as sel:
        try:
            while nxt < count or pending:
                now = clock()
                while nxt < count and now >= start + nxt * spacing_s:
                    _start_connect(sel, family, address, nxt, now, pending, errors)
                    nxt += 1
                _expire(sel, pending, now, timeout_s, errors)
                wakes = [t0 + timeout_s for _, t0 in pending.values()]
                if nxt < count:
                    wakes.append(start + nxt * spacing_s)
                wake = min(wakes, default=now)
                for key, _ in sel.select(max(0.0, wake - now)):
                    _finish(sel, key.fileobj, pending, rtts, errors, clock())
        finally:
            for sock in pending:
                sock.close()
    return rtts, errors


def _start_connect(sel, family, address, i, now, pending, errors):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex(address)
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        note(errors, reason(OSError(code, os.strerror(code))))
        return
    pending[sock] = (i, now)
    sel.register(sock, selectors.EVENT_WRITE)


def _finish(sel, sock, pending, rtts, errors, now):
    i, t0 = pending.pop(sock)
    sel.unregister(sock)
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    sock.close()
    if code == 0:
        rtts[i] = now - t0
    else:
        note(errors, reason(OSError(code, os.strerror(code))))


def _expire(sel, pending, now, timeout_s, errors):
    for sock, (_i, t0) in list(pending.items()):
        if now - t0 >= timeout_s:
            del pending[sock]
            sel.unregister(sock)
            sock.close()
            note(errors, f"timeout after {seconds(timeout_s)} s")
