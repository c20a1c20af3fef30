"""A printer for demos: shows each ticket in the terminal and, if asked, saves it as PNG and text."""

import logging
import os
import re
import sys

from common.tables import Key
from kiosk.printer import Printer, PrinterStatus
from kiosk.printer.decode import CELL_W, Decoder, Receipt, render_png
from kiosk.printer.errors import PrinterError

_SAVED = re.compile(r"ticket-(\d{4,})\.(?:png|txt)$")
MAX_UNSAVED = 50  # tickets held for a retry; the kiosk stops printing at the first, so this is plenty
log = logging.getLogger(__name__)


class SimPrinter(Printer):
    """Decodes the bytes it is sent; every cut shows a framed receipt on ``stream``.

    With ``out_dir`` it also writes ``ticket-0001.png`` and ``ticket-0001.txt``,
    numbering on from what the directory already holds so a restarted demo
    never overwrites the last one. Unknown commands are skipped, as a
    forgiving printer would; ``close`` shows anything left uncut (profiles
    without a cutter end a ticket with a feed only). A ticket that cannot be
    saved (full disk) makes :meth:`status` ``error`` until it is, as a
    printer out of paper would: the kiosk then marks it ``print_failed``.
    """

    OPTIONS = {"out_dir": Key("str", "")}

    def __init__(self, out_dir: str | None = None, stream=None, width_px: int = 384):
        super().__init__()
        if width_px < CELL_W:
            raise PrinterError(f"sim printer width_px {width_px!r} is too narrow; use 384 (58 mm) or 576 (80 mm)")
        self.out_dir = out_dir
        self.stream = stream
        self.width_px = width_px
        self.printed = 0  # receipts shown since open
        self._decoder: Decoder | None = None
        self._number = 0
        self.save_error: str | None = None  # why the oldest unsaved ticket is not saved
        self._unsaved: list[tuple[str, Receipt, str]] = []  # (file stem, receipt, text), oldest first

    @classmethod
    def arguments(cls, options: dict, config) -> dict:
        from kiosk import layout

        return {"out_dir": options["out_dir"] or os.path.join(config.data_dir, "tickets"),
                "width_px": layout.paper_from_config(options).dots}  # the profile's dots, as the layout uses

    @property
    def columns(self) -> int:
        return self.width_px // CELL_W

    def _open(self) -> None:
        if self.out_dir:
            try:
                os.makedirs(self.out_dir, exist_ok=True)
            except OSError as exc:
                raise PrinterError(f"sim printer cannot create out_dir {self.out_dir!r}: {exc.strerror}") from None
            self._number = last_saved_number(self.out_dir)
        self._decoder = Decoder(strict=False)

    def _send(self, data: bytes) -> None:
        for receipt in self._decoder.feed(data):
            self._show(receipt)

    def _close(self) -> None:
        decoder, self._decoder = self._decoder, None
        for receipt in decoder.finish():
            self._show(receipt)

    def _show(self, receipt: Receipt) -> None:
        self._number += 1
        self.printed += 1
        text = receipt.text(self.columns)
        stream = self.stream or sys.stdout  # looked up late so a redirected stdout is honoured
        try:
            stream.write(frame(text, self.columns, f"#{self._number:04d}") + "\n")
            stream.flush()
        except (OSError, UnicodeError, ValueError) as exc:  # a closed or ASCII-only terminal: still saved
            log.warning("sim printer cannot show ticket %d: %r", self._number, exc)
        if self.out_dir:
            self._save(receipt, text)

    def status(self) -> PrinterStatus:
        if not self.is_open:
            return PrinterStatus.OFFLINE
        if self._unsaved and not self._save_unsaved():
            return PrinterStatus.ERROR
        return PrinterStatus.OK

    def _save(self, receipt: Receipt, text: str) -> None:
        self._unsaved.append((os.path.join(self.out_dir, f"ticket-{self._number:04d}"), receipt, text))
        if len(self._unsaved) > MAX_UNSAVED:
            stem = self._unsaved.pop(0)[0]
            log.error("sim printer dropped unsaved %s: %d tickets wait already", stem, MAX_UNSAVED)
        self._save_unsaved()

    def _save_unsaved(self) -> bool:
        """Write every ticket not yet saved, oldest first; whether all are now on disk.

        Retried at each status query, like a printer holding its job until the
        paper is back: it fails again exactly while the cause (full disk,
        missing directory) lasts, so the status never says ok over a lost ticket.
        """
        while self._unsaved:
            stem, receipt, text = self._unsaved[0]
            try:
                with open(stem + ".txt", "w", encoding="utf-8") as f:
                    f.write(text + "\n")
                render_png(receipt, stem + ".png", self.width_px)
            except Exception as exc:  # noqa: BLE001  a lost ticket is a state, never a dead kiosk
                error = f"{stem}.txt/.png: {getattr(exc, 'strerror', None) or repr(exc)}"
                if error != self.save_error:  # said once per cause, not at every status poll
                    log.error("sim printer cannot save %s; check out_dir is writable and not full", error,
                              exc_info=not isinstance(exc, OSError))
                self.save_error = error
                return False
            self._unsaved.pop(0)
        if self.save_error is not None:
            log.info("sim printer saved its tickets to %s again", self.out_dir)
            self.save_error = None
        return True


def last_saved_number(out_dir: str) -> int:
    """The highest ``ticket-NNNN`` number saved in ``out_dir``, 0 if none."""
    numbers = [int(m.group(1)) for m in map(_SAVED.match, os.listdir(out_dir)) if m]
    return max(numbers, default=0)


def frame(text: str, columns: int, title: str = "") -> str:
    """``text`` inside an ASCII border ``columns`` wide, so any terminal shows it as a slip of paper."""
    top = f"+-{title}" if title else "+"
    top = top + "-" * (columns + 1 - len(top)) + "+"
    rows = [f"|{row[:columns]:<{columns}}|" for row in text.split("\n")]
    return "\n".join([top, *rows, "+" + "-" * columns + "+"])
