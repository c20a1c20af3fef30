"""The emulator facade: a thread-safe :class:`Mechanism` that saves and shows what it prints.

Links (pty, TCP) call :meth:`Emulator.receive` from their threads; tests and
the CLI inject faults from theirs. Finished documents are saved and handed
to ``on_document`` callbacks on one output thread, so drawing a PNG never
holds up the link (and with it the answer to a status query).
"""

import logging
import os
import queue
import re
import threading
from dataclasses import replace
from typing import Callable

from kiosk.printer.decode import CELL_W, render_png

from .mechanism import Document, Mechanism, State

log = logging.getLogger(__name__)

_SAVED = re.compile(r"doc-(\d{4,})(?:-[a-z]+)?\.(?:png|txt)$")


class Emulator:
    """An ESC/POS thermal printer: feed it bytes through a link, read back its documents.

    ``columns`` is the text width of :meth:`Document.text` renderings,
    ``width_px`` the PNG width (384 = 58 mm, 576 = 80 mm). With ``out_dir``
    each document is saved as ``doc-0001.txt`` and ``doc-0001.png``;
    interrupted ones as ``doc-0002-interrupted.*``, uncut ones
    ``doc-0003-uncut.*``. Numbering continues from what the directory holds.
    """

    def __init__(self, out_dir: str | None = None, columns: int = 32, width_px: int = 384, *,
                 code_pages: dict[int, str] | None = None, rng=None):
        if not isinstance(columns, int) or columns < 1:
            raise ValueError(f"columns {columns!r} must be a positive int: 32 for 58 mm paper, 48 for 80 mm")
        if not isinstance(width_px, int) or width_px < CELL_W:
            raise ValueError(f"width_px {width_px!r} is too narrow; use 384 (58 mm) or 576 (80 mm)")
        self.out_dir, self.columns, self.width_px = out_dir, columns, width_px
        self._file_base = _prepare_out_dir(out_dir) if out_dir else 0
        self._mechanism = Mechanism(code_pages, rng)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.documents: list[Document] = []  # published: saved and shown
        self._callbacks: list[Callable[[Document], None]] = []
        self.save_error: str | None = None  # why the last document could not be saved; cleared by set_error(False)
        self._outbox: queue.Queue = queue.Queue()
        self._closed = False
        self._output = threading.Thread(target=self._publish_loop, name="escpos-emulator-output", daemon=True)
        self._output.start()

    # --- what links call ------------------------------------------------------------

    def receive(self, data: bytes, start: float, end: float | None = None, byte_time: float = 0.0) -> bytes:
        """Bytes off the link (see :meth:`Mechanism.receive`); the answers to send back."""
        with self._lock:
            answers = self._mechanism.receive(data, start, end, byte_time)
            self._collect()
            return answers

    def link_lost(self, reason: str, interrupted: bool) -> None:
        with self._lock:
            self._mechanism.link_lost(reason, interrupted)
            self._collect()

    def _collect(self) -> None:
        """Under the lock: queue finished documents for output, wake anyone waiting on counts."""
        for document in self._mechanism.take_documents():
            self._outbox.put(document)
        self._changed.notify_all()

    # --- faults -----------------------------------------------------------------------

    def _inject(self, action: Callable[[Mechanism], None]) -> None:
        with self._lock:
            action(self._mechanism)
            self._collect()

    def set_paper(self, paper: str) -> None:
        """"ok", "near_end" or "out". A new roll or running out cancels :meth:`paper_out_after`."""
        self._inject(lambda m: m.set_paper(paper))

    def open_cover(self) -> None:
        self._inject(lambda m: m.open_cover())

    def close_cover(self) -> None:
        self._inject(lambda m: m.close_cover())

    def set_offline(self, offline: bool) -> None:
        self._inject(lambda m: m.set_offline(offline))

    def set_error(self, error: bool) -> None:
        """An unrecoverable error; clearing it (a power cycle) also clears a failed save."""
        if not error:
            self.save_error = None
        self._inject(lambda m: m.set_error(error))

    def paper_out_after(self, nbytes: int) -> None:
        """The paper runs out after ``nbytes`` more bytes arrive while printing (mid-ticket)."""
        self._inject(lambda m: m.paper_out_after(nbytes))

    def status_mode(self, mode: str) -> None:
        """"normal"; "silent": DLE EOT is never answered; "garbage": answers are not status bytes."""
        self._inject(lambda m: m.set_status_mode(mode))

    def flush(self, reason: str = "flush") -> None:
        """End the document in progress now, uncut (the last ticket of a profile without a cutter)."""
        self._inject(lambda m: m.end_document(reason))

    # --- reading it back --------------------------------------------------------------

    @property
    def state(self) -> State:
        with self._lock:
            return self._mechanism.state

    @property
    def received_bytes(self) -> int:
        return self.state.received_bytes

    @property
    def dropped_bytes(self) -> int:
        return self.state.dropped_bytes

    @property
    def realtime(self) -> list:
        """Every real-time command received (:class:`kiosk.printer.decode.RealTime`), in order."""
        with self._lock:
            return list(self._mechanism.realtime)

    def on_document(self, callback: Callable[[Document], None]) -> None:
        """Call ``callback(document)`` for each document, once saved, on the output thread."""
        with self._lock:
            self._callbacks.append(callback)

    def wait_for_documents(self, n: int, timeout: float) -> list[Document]:
        """All documents once there are at least ``n``; TimeoutError naming what came instead."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.documents) >= n, timeout):
                raise TimeoutError(f"waited {timeout} s for {n} document(s), got {len(self.documents)} "
                                   f"{[(d.number, d.ended_by) for d in self.documents]}; {self._mechanism.state}")
            return list(self.documents)

    def wait_for_received(self, nbytes: int, timeout: float) -> int:
        """Wait until ``nbytes`` bytes in all have been received; the count, or TimeoutError."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._mechanism.received_bytes >= nbytes, timeout):
                raise TimeoutError(f"waited {timeout} s for {nbytes} bytes received, "
                                   f"got {self._mechanism.received_bytes}")
            return self._mechanism.received_bytes

    # --- output -----------------------------------------------------------------------

    def _publish_loop(self) -> None:
        while (document := self._outbox.get()) is not None:
            document = replace(document, files=self._save(document))
            with self._lock:
                self.documents.append(document)
                callbacks = list(self._callbacks)
                self._changed.notify_all()
            for callback in callbacks:
                try:
                    callback(document)
                except Exception:  # a broken viewer must not stop the printer
                    log.exception("on_document callback %r failed on document %d", callback, document.number)

    def _save(self, document: Document) -> tuple[str, ...]:
        """The files written. A failure must not end this thread: it becomes the printer's error state."""
        if not self.out_dir:
            return ()
        suffix = "" if document.complete else "-interrupted" if document.interrupted else "-uncut"
        stem = os.path.join(self.out_dir, f"doc-{self._file_base + document.number:04d}{suffix}")
        saved: list[str] = []
        try:
            with open(stem + ".txt", "w", encoding="utf-8") as f:
                f.write(document.text(self.columns) + "\n")
            saved.append(stem + ".txt")
            render_png(document.receipt, stem + ".png", self.width_px)
            saved.append(stem + ".png")
        except Exception as exc:  # noqa: BLE001  OSError (full disk) or a bug: either way the doc is lost
            self._save_failed(stem, exc)
        return tuple(saved)

    def _save_failed(self, stem: str, exc: Exception) -> None:
        """Stop printing with an error, as a printer whose mechanism failed: the kiosk then sees it."""
        reason = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
        self.save_error = f"{stem}.txt/.png not saved: {reason}"
        log.error("emulator cannot save %s.txt/.png: %s; check out_dir is writable and not full, "
                  "then clear with 'error off'", stem, reason, exc_info=not isinstance(exc, OSError))
        self.set_error(True)

    def close(self) -> None:
        """Record a document still in progress, save what is queued, stop the output thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._mechanism.end_document("emulator closed")
            self._collect()
        self._outbox.put(None)
        self._output.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _prepare_out_dir(out_dir: str) -> int:
    """Create ``out_dir``; the highest ``doc-NNNN`` number already in it (0 if none)."""
    try:
        os.makedirs(out_dir, exist_ok=True)
        names = os.listdir(out_dir)
    except OSError as exc:
        raise OSError(exc.errno, f"emulator cannot use out_dir {out_dir!r}: {exc.strerror}; "
                                 "give a writable directory") from None
    return max((int(m.group(1)) for m in map(_SAVED.match, names) if m), default=0)
