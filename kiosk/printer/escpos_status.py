"""DLE EOT real-time status (Epson ESC/POS): the queries and what the answers mean.

Each answer is one byte with bits 1 and 4 set and bits 0 and 7 clear; a
byte that breaks that pattern is not a status answer (line noise, a printer
that echoes, a different protocol) and is treated as no answer.

| query | bit | meaning |
|---|---|---|
| DLE EOT 1 (printer)     | 3 (0x08) | offline: cannot print now |
| DLE EOT 2 (offline cause) | 2 (0x04) | cover open |
|                         | 5 (0x20) | stopped by paper end |
|                         | 6 (0x40) | error |
| DLE EOT 4 (paper sensor) | 2-3 (0x0C) | paper near end |
|                         | 5-6 (0x60) | paper end |
"""

from kiosk.printer import PrinterStatus

DLE_EOT = b"\x10\x04"
PRINTER, OFFLINE_CAUSE, ERROR_CAUSE, PAPER = 1, 2, 3, 4
FIXED_MASK, FIXED_BITS = 0x93, 0x12


def query(n: int) -> bytes:
    return DLE_EOT + bytes([n])


def is_status_byte(byte: int) -> bool:
    return byte & FIXED_MASK == FIXED_BITS


def interpret(printer: int, offline_cause: int | None, paper: int | None) -> PrinterStatus:
    """The kiosk's view from the answers to DLE EOT 1, 2 (asked only when offline) and 4."""
    if printer & 0x08:
        return _offline_reason(offline_cause or 0, paper or 0)
    if paper is not None and paper & 0x60:
        return PrinterStatus.PAPER_OUT  # some printers stay "online" with an empty roll
    if paper is not None and paper & 0x0C:
        return PrinterStatus.PAPER_NEAR_END
    return PrinterStatus.OK


def _offline_reason(cause: int, paper: int) -> PrinterStatus:
    if cause & 0x04:
        return PrinterStatus.COVER_OPEN
    if cause & 0x20 or paper & 0x60:
        return PrinterStatus.PAPER_OUT
    if cause & 0x40:
        return PrinterStatus.ERROR
    return PrinterStatus.OFFLINE
