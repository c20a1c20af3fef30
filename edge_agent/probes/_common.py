"""What the probe kinds share: the request/reply loop of a round, its figures, error wording."""

import errno
import select
import socket
import statistics
import time

_REASONS = {
    errno.ECONNREFUSED: "refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTDOWN: "host down",
}


def reason(exc: BaseException, timeout_s: float | None = None) -> str:
    """A short human wording of a network error, for ``ProbeResult.detail``."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the name ({exc.strerror})"
    if isinstance(exc, TimeoutError) and timeout_s is not None:
        return f"timeout after {seconds(timeout_s)} s"
    if isinstance(exc, OSError) and exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return str(exc) or type(exc).__name__


def seconds(value: float) -> str:
    """A duration for a detail text: "2.0", "0.25"."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"


def with_note(detail: str, extra: str) -> str:
    """``detail`` with a resolver's note (an old address used) after it, if there is one."""
    return f"{detail}; {extra}" if extra else detail


def figures(rtts: list[float | None]) -> dict:
    """Loss, median RTT and jitter of one round; ``rtts`` in seconds, None for a lost request, in send order.

    Jitter is the mean absolute difference of consecutive replies' RTTs
    (RFC 3550's packet delay variation without its 1/16 smoothing, which
    needs a long stream; a round is only a few packets).
    """
    got = [r * 1000 for r in rtts if r is not None]
    loss = 1 - len(got) / len(rtts) if rtts else None
    rtt = statistics.median(got) if got else None
    jitter = statistics.fmean(abs(b - a) for a, b in zip(got, got[1:], strict=False)) if len(got) > 1 else None
    return {"loss": loss, "rtt_ms": rtt, "jitter_ms": jitter}


def exchange(sock, send, parse, count: int, spacing_s: float, timeout_s: float,
             clock=time.monotonic) -> tuple[list[float | None], list[str]]:
    """Send ``count`` requests ``spacing_s`` apart on ``sock`` and match the replies.

    ``send(i)`` sends request ``i``; ``parse(data, addr)`` returns the index of
    the request a datagram answers, or None for a stray packet (someone
    else's reply, a late duplicate), which is ignored. A reply counts only
    within ``timeout_s`` of its own request. Returns the RTTs in seconds (None
    where no reply came in time) and the distinct errors met on the way.
    """
    sent: list[float | None] = [None] * count
    rtts: list[float | None] = [None] * count
    errors: list[str] = []
    start = clock()
    nxt = 0
    while True:
        now = clock()
        while nxt < count and now >= start + nxt * spacing_s:
            nxt, now = _send_one(send, nxt, sent, errors, clock)
        deadlines = [sent[i] + timeout_s for i in range(nxt) if sent[i] is not None and rtts[i] is None]
        open_deadline = max((d for d in deadlines if d > now), default=None)
        if nxt == count and open_deadline is None:
            return rtts, errors
        wake = min(start + nxt * spacing_s if nxt < count else float("inf"), open_deadline or float("inf"))
        _receive(sock, parse, max(0.0, wake - now), sent, rtts, timeout_s, errors, clock)


def _send_one(send, i, sent, errors, clock):
    now = clock()
    try:
        send(i)
        sent[i] = now
    except OSError as exc:  # e.g. no route while the line is down: this request is lost
        note(errors, reason(exc))
    return i + 1, clock()


def _receive(sock, parse, wait_s, sent, rtts, timeout_s, errors, clock):
    try:
        readable, _, _ = select.select([sock], [], [], wait_s)
    except InterruptedError:
        return
    if not readable:
        return
    try:
        data, addr = sock.recvfrom(4096)
    except OSError as exc:  # e.g. ICMP port unreachable on a connected UDP socket
        note(errors, reason(exc))
        return
    now = clock()
    i = parse(data, addr)
    if i is not None and 0 <= i < len(sent) and sent[i] is not None and rtts[i] is None:
        if now - sent[i] <= timeout_s:
            rtts[i] = now - sent[i]


def note(errors: list[str], text: str) -> None:
    """Add ``text`` to ``errors`` once: a round's detail names each kind of error once."""
    if text not in errors:
        errors.append(text)


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
