"""The kiosk's states as ``str`` enums: each value is exactly the string the ledger's SQL and JSON hold,
so a member compares equal to what an older reader reads and is stored as it always was.

``StrEnum``: a member in a message or a log line reads as its value ("void"), as the string did.
PrinterStatus stays the ``(str, Enum)`` it has always been; its users say ``.value``."""

import enum


class TicketStatus(enum.StrEnum):
    """A ticket's life in ``tickets.status`` (the table's CHECK constraint lists the same five)."""
    ISSUED = "issued"  # committed; not yet confirmed printed (a power cut mid-print leaves it so)
    PRINTED = "printed"
    PRINT_FAILED = "print_failed"  # owed: printed again when the printer is back
    REPRINTED = "reprinted"  # printed again at staff's request, marked CETAK ULANG
    VOID = "void"  # keeps its number and place; never printed again


class PrinterStatus(str, enum.Enum):
    OK = "ok"
    PAPER_NEAR_END = "paper_near_end"  # a warning: still prints
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    ERROR = "error"
    UNKNOWN = "unknown"  # the printer does not answer status; we try to print

    @property
    def can_print(self) -> bool:
        return self in (PrinterStatus.OK, PrinterStatus.PAPER_NEAR_END, PrinterStatus.UNKNOWN)

    @property
    def fault(self) -> bool:
        """What the agent reports as a printer fault: a state in which no ticket prints."""
        return not self.can_print


class PressKind(enum.StrEnum):
    """What became of a button press (``kiosk.app.Outcome.kind``)."""
    TICKET = "ticket"
    FULL = "full"  # every day within the horizon is full: a quota-full slip
    REFUSED = "refused"  # the printer cannot print; nothing issued
    IGNORED = "ignored"  # a press within its button's cooldown: nothing issued, nothing said


class ClockVerdict(enum.StrEnum):
    """The clock's judgement of the system clock (``kiosk_state`` clock record ``verdict``)."""
    OK = "ok"
    TOO_EARLY = "too_early"  # before the software existed
    BEHIND = "behind"  # behind the ledger's latest time
    UNSYNCED_STEP = "unsynced_step"  # stepped while running, no time server vouches for it
    STEP_BACK = "step_back"  # set back while running, before the ledger's latest time
    LEAP = "leap"  # more than max_leap ahead


class ClockOutcome(enum.StrEnum):
    """What became of a clock confirmation."""
    CONFIRMED = "confirmed"
    NOTHING_TO_CONFIRM = "nothing_to_confirm"
    EXPIRED = "expired"


class RequestKind(enum.StrEnum):
    """What staff or the agent ask the running kiosk (``requests.kind``; its CHECK lists the same three)."""
    REPRINT = "reprint"
    TEST_PRINT = "test_print"
    CLOCK_CONFIRM = "clock_confirm"
