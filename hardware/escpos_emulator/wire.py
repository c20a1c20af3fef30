"""One direction of a link, paced like a serial line: pure schedule arithmetic, the clock passed in.

A pty or a loopback socket moves bytes instantly. A printer on a 19200 baud
line gets one byte every 10/19200 s (start bit, 8 data bits, stop bit), so a
ticket takes a fifth of a second to arrive and an answer to a status query
comes back only after everything sent before it. The schedule is absolute:
each byte's slot follows the previous slot, not the moment the thread woke
up, so oversleeping delays a byte but never the ones after it.
"""

BITS_PER_BYTE = 10  # start + 8 data + stop


def byte_time(baud: int | None) -> float:
    """Seconds one byte takes at ``baud`` (None: no pacing, 0 s)."""
    if baud is None:
        return 0.0
    if not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud {baud!r} must be a positive int such as 9600, 19200 or 115200, or None")
    return BITS_PER_BYTE / baud


class Wire:
    """Bytes queue up with :meth:`put` and come out of :meth:`take` once their last bit is in."""

    def __init__(self, byte_time: float = 0.0):
        self.byte_time = byte_time
        self._queue = bytearray()
        self._next_start = 0.0  # when the first queued byte's start bit went out
        self._free_at = float("-inf")  # when the last byte taken was complete

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, data: bytes, now: float) -> None:
        if not self._queue:
            self._next_start = max(now, self._free_at)  # an idle line starts at once, a busy one after
        self._queue += data

    def deadline(self) -> float | None:
        """When the first queued byte is complete; None if nothing is queued."""
        return self._next_start + self.byte_time if self._queue else None

    def take(self, now: float, limit: int | None = None) -> tuple[bytes, float, float] | None:
        """Bytes complete by ``now`` (at most ``limit``), with their first start and ``now``; or None.

        The start is the scheduled one; the end is ``now``, when they are
        actually handed on, so measured time includes any lateness.
        """
        if not self._queue:
            return None
        count = len(self._queue)
        if self.byte_time > 0:
            count = min(count, int((now - self._next_start) / self.byte_time + 1e-9))
        if limit is not None:
            count = min(count, limit)
        if count <= 0:
            return None
        data = bytes(self._queue[:count])
        del self._queue[:count]
        start = self._next_start
        self._next_start += count * self.byte_time
        self._free_at = self._next_start
        return data, start, now

    def clear(self) -> None:
        self._queue.clear()
