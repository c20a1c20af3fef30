"""What every link does: one thread that moves bytes between an endpoint and the emulator.

The thread owns the endpoint's file descriptors: it opens nothing, but it
closes them when it ends, so no fd is ever closed under a blocked read. It
waits with select() on the endpoint and a wake-up pipe, with a timeout until
the next byte is due on either wire (see :mod:`.wire`).

Unplugging stops the thread (the endpoint closes, the kiosk sees its port
fail); replugging opens a new endpoint and a new thread. Control methods may
be called from any thread; the link thread itself never takes the control
lock, so ``unplug`` can join it safely.
"""

import logging
import os
import select
import threading
import time

from .wire import Wire

log = logging.getLogger(__name__)

# A printer's receive buffer. Beyond it the link stops reading, so a fast
# sender is held back by the line speed as on a real serial port.
RX_BUFFER = 4096


class LinkError(OSError):
    """A link could not be opened; the message names the path or port and what to do."""


class Endpoint:
    """The I/O side of one plugged-in period. Subclasses own their fds and close them in ``close``."""

    def watch(self, room: bool) -> list:
        """File objects or fds to wait on; ``room`` is False while the receive buffer is full."""
        raise NotImplementedError

    def ready(self, obj) -> bytes:
        """``obj`` is readable: the bytes read (b"" if none for the wire)."""
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def settle(self, rx_empty: bool) -> str | None:
        """Housekeeping once due bytes are delivered; a reason if the peer just went away."""
        return None

    def close(self) -> None:
        raise NotImplementedError


class Link:
    """Base of :class:`PtyLink` and :class:`TcpLink`: plug state, the serving thread, pacing."""

    kind = "link"

    def __init__(self, emulator, byte_time: float):
        self.emulator = emulator
        self.byte_time = byte_time
        self._control = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._lost_as = ("unplugged", True)  # how a document in progress ends when the thread stops
        self._cut_after: int | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # --- control, from any thread -------------------------------------------------------

    @property
    def plugged(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping

    def replug(self) -> None:
        """Plug in again (a new endpoint); a no-op while plugged."""
        with self._control:
            if self._closed:
                raise LinkError(f"{self.kind} link is closed; make a new one")
            if self.plugged:
                return
            self._join()
            endpoint = self._open()
            self._stopping, self._cut_after, self._lost_as = False, None, ("unplugged", True)
            self._thread = threading.Thread(target=self._serve, args=(endpoint,), daemon=True,
                                            name=f"escpos-emulator-{self.kind}")
            self._thread.start()

    def unplug(self) -> None:
        """Pull the cable: the endpoint closes, a document in progress is interrupted. Idempotent."""
        with self._control:
            self._stop(("unplugged", True))

    def disconnect_after(self, nbytes: int) -> None:
        """Unplug by itself after ``nbytes`` more bytes reach the printer (a mid-ticket disconnect)."""
        if not isinstance(nbytes, int) or nbytes < 0:
            raise ValueError(f"disconnect_after nbytes {nbytes!r} must be an int >= 0")
        self._cut_after = nbytes
        self._wake()

    def wait_unplugged(self, timeout: float) -> bool:
        """Wait for the serving thread to end (after ``disconnect_after``); True if it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not (thread is not None and thread.is_alive())

    def close(self) -> None:
        """Unplug for good and release everything. Idempotent."""
        with self._control:
            if self._closed:
                return
            self._stop(("link closed", False))  # shutting down is not a fault
            self._closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _stop(self, lost_as: tuple[str, bool]) -> None:
        if self._thread is not None:
            self._lost_as = lost_as
            self._stopping = True
            self._wake()
            self._join()

    def _join(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _wake(self) -> None:
        if self._closed:
            return  # the pipe's fd numbers may belong to someone else by now
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already woken (pipe full) or closed: either way nobody is left to miss it

    # --- for subclasses ---------------------------------------------------------------

    def _open(self) -> Endpoint:
        raise NotImplementedError

    # --- the serving thread -------------------------------------------------------------

    def _serve(self, endpoint: Endpoint) -> None:
        rx, tx = Wire(self.byte_time), Wire(self.byte_time)
        try:
            while not self._stopping and self._turn(endpoint, rx, tx):
                pass
        except Exception:
            log.exception("%s link failed; it is now unplugged", self.kind)
        finally:
            endpoint.close()
            self.emulator.link_lost(*self._lost_as)

    def _turn(self, endpoint: Endpoint, rx: Wire, tx: Wire) -> bool:
        """One wait-read-deliver round; False when ``disconnect_after`` has fired."""
        now = time.monotonic()
        deadlines = [d for d in (rx.deadline(), tx.deadline()) if d is not None]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        ready, _, _ = select.select([self._wake_r, *endpoint.watch(len(rx) < RX_BUFFER)], [], [], timeout)
        now = time.monotonic()
        for obj in ready:
            if obj == self._wake_r:
                _drain(self._wake_r)
            elif data := endpoint.ready(obj):
                rx.put(data, now)
        if not self._deliver(rx, tx, now):
            return False
        if sent := tx.take(now):
            endpoint.send(sent[0])
        if gone := endpoint.settle(len(rx) == 0):
            tx.clear()
            self.emulator.link_lost(gone, interrupted=False)
        return True

    def _deliver(self, rx: Wire, tx: Wire, now: float) -> bool:
        if self._cut_after == 0:
            return False
        taken = rx.take(now, self._cut_after)
        if taken:
            data, start, end = taken
            if answers := self.emulator.receive(data, start, end, self.byte_time):
                tx.put(answers, now)
            if self._cut_after is not None:
                self._cut_after -= len(data)
        return self._cut_after != 0


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
