"""The printer itself, without any link: paper, cover, buttons, what ends up on paper.

Pure logic: no threads, no I/O, no clock. Bytes come in with the times the
link says they arrived; answers to status queries go back as return values.
The byte stream is parsed by :class:`kiosk.printer.decode.Decoder`, so a
real-time command is found by command structure: a 0x10 0x04 inside a
GS ( k block is QR data, not a status query.
"""

import random
from collections import deque
from dataclasses import dataclass, replace

from kiosk.printer.decode import CODE_PAGES, Decoder, Head, Line, RealTime, Receipt

PAPER_STATES = ("ok", "near_end", "out")
STATUS_MODES = ("normal", "silent", "garbage")

# Every Epson status byte has bits 1 and 4 set and bits 0 and 7 clear: that is
# how a host tells a status byte from line noise.
FIXED_BITS = 0x12
OFFLINE = 0x08  # n=1: cannot print
COVER_OPEN = 0x04  # n=2
PAPER_END_STOP = 0x20  # n=2: printing stopped by paper end
ERROR_STOP = 0x40  # n=2: an error stopped printing
UNRECOVERABLE = 0x20  # n=3
NEAR_END = 0x0C  # n=4: both near-end sensor bits
PAPER_END = 0x60  # n=4: both paper-end sensor bits


@dataclass(frozen=True)
class Faults:
    """What the printer's sensors and switches say."""

    paper: str = "ok"  # one of PAPER_STATES
    cover_open: bool = False
    offline: bool = False  # switched off-line, e.g. by a button
    error: bool = False  # unrecoverable: needs a power cycle

    @property
    def can_print(self) -> bool:
        return self.reason is None

    @property
    def reason(self) -> str | None:
        """Why it cannot print, most serious first; None when it can."""
        for reason, active in (("error", self.error), ("cover open", self.cover_open),
                               ("paper out", self.paper == "out"), ("offline", self.offline)):
            if active:
                return reason
        return None


def status_byte(n: int, faults: Faults) -> int:
    """The answer an Epson printer gives to DLE EOT ``n`` (1..4)."""
    out = faults.paper == "out"
    if n == 1:
        return FIXED_BITS | (0 if faults.can_print else OFFLINE)
    if n == 2:
        return (FIXED_BITS | (COVER_OPEN if faults.cover_open else 0) | (PAPER_END_STOP if out else 0)
                | (ERROR_STOP if faults.error else 0))
    if n == 3:
        return FIXED_BITS | (UNRECOVERABLE if faults.error else 0)
    if n == 4:
        # Running out passes the near-end sensor first: out reports both.
        return FIXED_BITS | (NEAR_END if faults.paper != "ok" else 0) | (PAPER_END if out else 0)
    raise ValueError(f"DLE EOT n {n!r} is not one of 1, 2, 3, 4")


@dataclass(frozen=True)
class Document:
    """One ticket's worth of paper, and how it ended.

    ``complete``: it ended with a cut. ``interrupted``: a fault (or an
    unplugged cable) stopped it; ``receipt`` holds what printed before.
    Neither: it ended some other way (a new ESC @, the client hanging up)
    without a cut, as tickets of profiles without a cutter do.
    """

    number: int
    receipt: Receipt
    complete: bool
    interrupted: bool
    ended_by: str  # "cut", "paper out", "cover open", "offline", "error", "unplugged", "ESC @", ...
    byte_count: int  # print bytes, real-time commands not counted
    first_byte_at: float
    last_byte_at: float
    files: tuple[str, ...] = ()  # set once saved

    @property
    def lines(self) -> list[Line]:
        return self.receipt.lines

    @property
    def qr_payloads(self) -> list[str]:
        return self.receipt.qr_payloads

    def text(self, columns: int = 32) -> str:
        return self.receipt.text(columns)


@dataclass(frozen=True)
class State:
    """A snapshot of the printer, for tests and the CLI's ``state`` command."""

    faults: Faults
    status_mode: str
    can_print: bool
    dropping: bool  # the rest of a ticket is being thrown away
    paper_out_in: int | None  # print bytes left before the paper runs out, if armed
    received_bytes: int
    dropped_bytes: int
    documents: int


@dataclass
class _Progress:
    """The document being received."""

    byte_count: int
    first_at: float
    last_at: float


class _PaperHead(Head):
    """The decoder's head, wired to the mechanism: output reaches paper only while it can print."""

    def __init__(self, code_pages: dict[int, str], mechanism: "Mechanism"):
        self._mechanism = mechanism
        super().__init__(code_pages)

    def initialize(self) -> None:
        super().initialize()
        self._mechanism._initialized()

    def print_text(self, text: str) -> None:
        if self._mechanism.printing:
            super().print_text(text)

    def emit(self, item) -> None:
        if self._mechanism.printing:
            super().emit(item)

    def cut(self) -> None:
        printed = self._mechanism.printing
        if printed:
            super().cut()
        self._mechanism._cut(self.finished.pop() if printed else None)

    def take_printed(self) -> Receipt:
        """What is on paper so far; the line being built was never printed and is lost."""
        receipt, self.receipt = self.receipt, Receipt()
        self.pending, self.pending_style = "", None
        return receipt


# Bytes of history kept: enough to cover the longest real-time command (DLE DC4 fn 8).
_RECENT = 16


class Mechanism:
    """Takes bytes, prints documents, answers status queries, suffers injected faults."""

    def __init__(self, code_pages: dict[int, str] | None = None, rng: random.Random | None = None):
        self.faults = Faults()
        self.status_mode = "normal"
        self.received_bytes = 0
        self.dropped_bytes = 0
        self.realtime: list[RealTime] = []  # every real-time command received, in order
        self._rng = rng or random.Random(0)  # garbage answers, reproducible by default
        self._paper_left: int | None = None
        self._progress: _Progress | None = None
        self._dropped_run = 0  # print bytes dropped since the last ticket boundary
        self._cut_short = False  # a fault stopped the current ticket: drop its rest
        # Per byte: [printed (None once known to be real-time), start, end, counted toward paper_out_after]
        self._recent: deque[list] = deque(maxlen=_RECENT)
        self._answers = bytearray()
        self._finished: list[Document] = []
        self._numbered = 0
        self._head = _PaperHead(CODE_PAGES if code_pages is None else code_pages, self)
        self._decoder = Decoder(strict=False, head=self._head, on_realtime=self._realtime)

    # --- the byte stream ------------------------------------------------------------

    @property
    def printing(self) -> bool:
        """Print data goes to paper now (rather than being dropped)."""
        return self.faults.can_print and not self._cut_short and self._dropped_run == 0

    def receive(self, data: bytes, start: float, end: float | None = None, byte_time: float = 0.0) -> bytes:
        """Take ``data`` off the link; return the answers to send back.

        The first byte started arriving at ``start``, each took ``byte_time``,
        the last was in at ``end``. One byte at a time, because a fault
        (``paper_out_after``) can strike between any two.
        """
        last = len(data) - 1
        for i, byte in enumerate(data):
            byte_start = start + i * byte_time
            byte_end = end if i == last and end is not None else byte_start + byte_time
            self._take(byte, byte_start, byte_end)
        answers, self._answers = bytes(self._answers), bytearray()
        return answers

    def _take(self, byte: int, start: float, end: float) -> None:
        self.received_bytes += 1
        printing = self.printing
        if printing:
            self._count(start, end)
        else:
            self.dropped_bytes += 1
            self._dropped_run += 1
        counts_down = printing and self._paper_left is not None
        self._recent.append([printing, start, end, counts_down])
        self._decoder.feed(bytes((byte,)))
        if counts_down and self._paper_left is not None:
            self._paper_left -= 1
            if self._paper_left <= 0:
                self._run_out()

    def _realtime(self, command: RealTime) -> None:
        """Real-time commands are answered whatever the state, and are not print data."""
        self.realtime.append(command)
        self._uncount(command.size)
        if command.name == "DLE EOT":
            self._answer(command.args[0])

    def _uncount(self, size: int) -> None:
        """Take the last ``size`` bytes back out of the document, dropped and paper counts.

        Their countdown toward ``paper_out_after`` is given back too, unless
        the paper already ran out on one of them: a fault cannot be undone.
        """
        progress = self._progress
        for entry in list(self._recent)[-size:]:
            if entry[3] and self._paper_left is not None:
                self._paper_left += 1
            if entry[0] is True and progress is not None:
                progress.byte_count -= 1
            elif entry[0] is False:
                self.dropped_bytes -= 1
                self._dropped_run -= 1
            entry[0] = None
        if progress is not None and progress.byte_count <= 0:
            self._progress = None
        elif progress is not None:
            progress.last_at = next((entry[2] for entry in reversed(self._recent) if entry[0]), progress.last_at)

    def _answer(self, n: int) -> None:
        if self.status_mode == "silent":
            return
        if self.status_mode == "garbage":
            self._answers.append(0x80 | self._rng.randrange(0x80))  # bit 7 set: never a valid status byte
            return
        self._answers.append(status_byte(n, self.faults))

    def _count(self, start: float, end: float) -> None:
        if self._progress is None:
            self._progress = _Progress(0, start, end)
        self._progress.byte_count += 1
        self._progress.last_at = end

    def _initialized(self) -> None:
        """ESC @ starts a ticket: a dropped ticket is over, and an uncut one before it ends here."""
        init = list(self._recent)[-2:]
        if len(init) < 2:
            return  # the power-on initialize, before any byte
        self._cut_short = False
        if not self.faults.can_print:
            return  # its bytes were dropped, and so is the ticket it starts
        self._dropped_run = 0
        if self._progress is not None and self._head.receipt.items:
            self._split(init)
        for entry in init:
            if entry[0] is False:  # dropped only because the ticket before it was: this one prints
                entry[0] = True
                self.dropped_bytes -= 1
                self._count(entry[1], entry[2])

    def _split(self, init: list) -> None:
        """What printed before this ESC @ was a document that never got its cut."""
        progress = self._progress
        mine = sum(1 for entry in init if entry[0] is True)
        before = self._recent[-3][2] if len(self._recent) >= 3 else init[0][1]
        self._progress = _Progress(progress.byte_count - mine, progress.first_at, before)
        self._record(self._head.take_printed(), complete=False, interrupted=False, ended_by="ESC @")
        if mine:
            self._progress = _Progress(mine, init[0][1], init[1][2])

    def _cut(self, receipt: Receipt | None) -> None:
        """A cut ends a ticket, printed or dropped."""
        self._cut_short, self._dropped_run = False, 0
        if receipt is not None and self._progress is not None:
            self._record(receipt, complete=True, interrupted=False, ended_by="cut")

    def _record(self, receipt: Receipt, *, complete: bool, interrupted: bool, ended_by: str) -> None:
        progress, self._progress = self._progress, None
        self._numbered += 1
        self._finished.append(Document(self._numbered, receipt, complete, interrupted, ended_by,
                                       progress.byte_count, progress.first_at, progress.last_at))

    def take_documents(self) -> list[Document]:
        """Documents finished since the last call."""
        done, self._finished = self._finished, []
        return done

    def end_document(self, reason: str, interrupted: bool = False) -> None:
        """Record the document in progress, if any, as ended by ``reason`` without a cut."""
        if self._progress is not None:
            self._record(self._head.take_printed(), complete=False, interrupted=interrupted, ended_by=reason)
            self._cut_short = interrupted

    def link_lost(self, reason: str, interrupted: bool) -> None:
        """The link went away: a half-received command is forgotten, the document ends.

        A real printer would keep the half command and misread the next job's
        first bytes as its parameters; forgetting it keeps a replugged link usable.
        """
        self._decoder.discard_partial()
        self.end_document(reason, interrupted)

    # --- injected faults ------------------------------------------------------------

    def _change(self, **faults) -> None:
        could = self.faults.can_print
        self.faults = replace(self.faults, **faults)
        if could and not self.faults.can_print:
            self.end_document(self.faults.reason, interrupted=True)

    def set_paper(self, paper: str) -> None:
        """A new roll ("ok") or running out ("out") also cancels :meth:`paper_out_after`."""
        if paper not in PAPER_STATES:
            raise ValueError(f"paper {paper!r} is not one of {', '.join(PAPER_STATES)}")
        if paper != "near_end":
            self._paper_left = None
        self._change(paper=paper)

    def open_cover(self) -> None:
        self._change(cover_open=True)

    def close_cover(self) -> None:
        self._change(cover_open=False)

    def set_offline(self, offline: bool) -> None:
        self._change(offline=bool(offline))

    def set_error(self, error: bool) -> None:
        self._change(error=bool(error))

    def paper_out_after(self, nbytes: int) -> None:
        """The paper runs out once ``nbytes`` more print bytes (not real-time commands) have printed."""
        if not isinstance(nbytes, int) or nbytes < 0:
            raise ValueError(f"paper_out_after nbytes {nbytes!r} must be an int >= 0")
        self._paper_left = nbytes
        if nbytes == 0:
            self._run_out()

    def _run_out(self) -> None:
        self._paper_left = None
        self._change(paper="out")

    def set_status_mode(self, mode: str) -> None:
        if mode not in STATUS_MODES:
            raise ValueError(f"status mode {mode!r} is not one of {', '.join(STATUS_MODES)}")
        self.status_mode = mode

    @property
    def state(self) -> State:
        dropping = self._cut_short or self._dropped_run > 0
        return State(self.faults, self.status_mode, self.faults.can_print, dropping, self._paper_left,
                     self.received_bytes, self.dropped_bytes, self._numbered)
