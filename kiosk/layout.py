"""What a printed ticket looks like: pure functions from a ticket to ESC/POS bytes.

The bytes are produced through python-escpos commands on its ``Dummy``
printer, so a printer backend only has to move them. Importing this module is
cheap: python-escpos (with Pillow, qrcode, yaml, ...) is imported on first
use, or up front by :func:`prepare`.
"""

import contextlib
import functools
import io
import logging
import os
import sys
import textwrap
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time

from common.indonesian import format_day
from kiosk import escpos_cache
from kiosk.ticket import Ticket

log = logging.getLogger(__name__)

# For profiles that do not know their paper (``default``): font A, 12 dots per character at 203 dpi.
COLUMNS = {58: 32, 80: 48}
DOTS = {58: 384, 80: 576}
QR_MODES = ("auto", "native", "image")
QR_MODULE_DOTS = {58: 6, 80: 8}  # ~0.75 / 1 mm modules: easy for cheap phone cameras
# Bytes a QR symbol of version 1, 2, ... holds in byte mode at error correction M.
QR_CAPACITY_M = (14, 26, 42, 62, 84, 106, 122, 152, 180, 213,
                 251, 287, 331, 362, 412, 450, 504, 560, 624, 666)
QR_MIN_MODULE_DOTS = 3  # below this most printers' dots smear into each other

FREE_NOTICE = ("Layanan ini GRATIS.", "Jangan gunakan calo.")
PICKLE_DIR_ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"

# Typography and letters a code page may lack, mapped to ASCII (used only when the page lacks them).
_ASCII_FALLBACK = str.maketrans({
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE", "\u0153": "oe", "\u0152": "OE", "\u00f8": "o",
    "\u00d8": "O", "\u0111": "d", "\u0110": "D", "\u0142": "l", "\u0141": "L", "\u0131": "i",
    "\u00fe": "th", "\u00de": "Th", "\u20ac": "EUR",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-", "\u2018": "'", "\u2019": "'", "\u201a": "'",
    "\u201b": "'", "\u2032": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"', "\u2022": "*",
    "\u00b7": "*", "\u2026": "...",
})

_prepared = False


@dataclass(frozen=True)
class Paper:
    """The roll and printer a ticket is laid out for."""

    width_mm: int = 58
    code_page: str = "CP437"
    profile: str = "default"  # a python-escpos printer profile name
    qr_code: str = "auto"  # "native" (GS ( k), "image" (raster), "auto": native if the profile has it

    def __post_init__(self):
        if self.width_mm not in COLUMNS:
            raise ValueError(f"paper width_mm {self.width_mm!r} is not supported; use 58 or 80")
        if self.qr_code not in QR_MODES:
            raise ValueError(f"qr_code {self.qr_code!r} is not supported; use one of {', '.join(QR_MODES)}")

    @property
    def printer(self):
        """The profile's :class:`kiosk.printer.profiles.PrinterProfile` (loads python-escpos)."""
        if not _prepared:
            prepare()
        from kiosk.printer import profiles

        return profiles.load(self.profile)

    @property
    def columns(self) -> int:
        """Font A columns: the profile's when it knows this paper (TM-T88V: 42), else 32 / 48."""
        printer = self.printer
        return printer.columns if printer.roll_mm == self.width_mm else COLUMNS[self.width_mm]

    @property
    def dots(self) -> int:
        printer = self.printer
        return printer.dots if printer.roll_mm == self.width_mm else DOTS[self.width_mm]

    @property
    def native_qr(self) -> bool:
        """Whether the QR goes as GS ( k (a few dozen bytes) rather than a raster image."""
        return self.qr_code == "native" or (self.qr_code == "auto" and self.printer.native_qr)


def paper_from_config(printer: dict) -> Paper:
    """The :class:`Paper` of a config's ``[printer]`` section."""
    return Paper(printer["paper_width_mm"], printer["code_page"], printer["profile"], printer["qr_code"])


def prepare(cache_dir: str | None = None) -> None:
    """Import python-escpos now, with its capabilities cache in ``cache_dir``.

    Without a fixed cache directory python-escpos re-parses its printer
    database (~120 ms) at every start. Call this once at kiosk start so the
    first ticket is not the one that pays for the import. The cache is
    checked (and rebuilt whole) first, so a cache damaged by a power cut
    cannot stop a start: see kiosk/escpos_cache.py. Note that
    python-escpos calls ``logging.basicConfig()`` when imported, so configure
    logging before calling this.
    """
    global _prepared
    if cache_dir is not None:
        os.environ[PICKLE_DIR_ENV] = cache_dir
    directory = os.environ.setdefault(PICKLE_DIR_ENV, _default_cache_dir())
    if not _writable_dir(directory):
        # A slow start beats no tickets: let python-escpos use a temp dir.
        log.warning("escpos cache dir %r is not writable; set %s to a writable "
                    "directory for faster starts", directory, PICKLE_DIR_ENV)
        del os.environ[PICKLE_DIR_ENV]
    elif "escpos.capabilities" not in sys.modules and not escpos_cache.ensure(directory):
        del os.environ[PICKLE_DIR_ENV]  # ensure() said why; a temp dir is still a start
    import escpos.printer.dummy  # noqa: F401  (the slow part: the printer database)

    _prepared = True


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "antrean")


def _writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def format_issued(moment: datetime) -> str:
    """``26-11-2026 07:55`` in the moment's own (the office's) timezone."""
    return moment.strftime("%d-%m-%Y %H:%M")


def clean_text(text: str, code_page: str | None = None) -> str:
    """Reduce ``text`` to characters ``code_page`` holds, one column each.

    A character the page has is kept (``é`` prints as ``é`` in CP437 or
    CP850); one it lacks is transliterated (``ő`` -> ``o``, ``—`` -> ``-``,
    ``ß`` -> ``ss``) and what still does not fit becomes ``?``. Without a page
    only ASCII is kept. Control characters become ``?`` so a name can never
    smuggle in a command.
    """
    text = str(text)
    if text.isascii() and text.isprintable():  # nearly every office and service name
        return " ".join(text.split())
    page = _page_characters(code_page.upper()) if code_page else frozenset()
    composed = unicodedata.normalize("NFC", text)
    return " ".join("".join(_in_page(c, page) for c in composed).split())


def _in_page(char: str, page: frozenset) -> str:
    category = unicodedata.category(char)
    if category == "Cc":
        # python-escpos passes anything below 0x80 through raw, ESC and GS included.
        return " " if char in "\t\n\r\v\f" else "?"
    if category == "Cf":  # zero-width space, soft hyphen: invisible anyway
        return ""
    if char.isspace():
        return " "
    if char < "\x80" or char in page:
        return char
    decomposed = unicodedata.normalize("NFKD", char.translate(_ASCII_FALLBACK)).translate(_ASCII_FALLBACK)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    if kept and all((c < "\x80" or c in page) and unicodedata.category(c)[0] != "C" and not c.isspace()
                    for c in kept):
        return kept
    return "?"


@functools.lru_cache(maxsize=8)
def _page_characters(code_page: str) -> frozenset:
    """The printable non-ASCII characters python-escpos encodes into ``code_page`` (0x80-0xFF).

    Read from the very table its encoder uses (a private helper of 3.x; the
    tests decode every page back), so what is kept is exactly what it encodes.
    """
    if not _prepared:
        prepare()
    from escpos.magicencode import Encoder

    try:
        chars = Encoder._get_codepage_char_list(code_page)
    except (LookupError, KeyError):
        return frozenset()
    return frozenset(c for c in chars if c >= "\x80" and unicodedata.category(c)[0] not in "CZ")


def fit(phrases, columns: int, code_page: str | None = None) -> list[str]:
    """Join ``phrases`` into lines of at most ``columns``, breaking between phrases first.

    So ``Dilayani:`` + a date stays one line when it fits and otherwise
    breaks before the date, never inside it. A phrase too long for a line is
    wrapped between words into lines of even length; only a single word
    longer than a line is split.
    """
    lines: list[str] = []
    for phrase in (clean_text(p, code_page) for p in phrases):
        if lines and len(lines[-1]) + 1 + len(phrase) <= columns:
            lines[-1] += " " + phrase
        elif phrase:
            lines.extend(_balanced_wrap(phrase, columns))
    return lines


@functools.lru_cache(maxsize=256)  # office and service names repeat on every ticket
def _balanced_wrap(text: str, columns: int) -> tuple[str, ...]:
    """Wrap between words into as few lines as greedy wrapping, but of even length.

    Centred headings then read "Dinas Kependudukan dan / Pencatatan Sipil
    Kota Serang" instead of leaving one orphan word on the last line.
    """
    lines = textwrap.wrap(text, columns)
    if len(lines) <= 1:
        return tuple(lines)
    longest_word = max(len(word) for word in text.split())
    for narrower in range(columns - 1, longest_word - 1, -1):  # never so narrow a word must split
        tighter = textwrap.wrap(text, narrower)
        if len(tighter) > len(lines):
            break
        lines = tighter
    return tuple(lines)


def check_paper(paper: Paper) -> None:
    """Raise ValueError naming what of ``paper`` this printer profile cannot do, and the fix.

    The profile (python-escpos' printer database) decides: its code pages,
    the roll it takes, whether it draws a QR itself (GS ( k) or needs it as
    a raster image. A printer sent a GS ( k it does not know prints nothing
    where the QR should be, and nobody notices until a citizen's ticket is
    checked.
    """
    printer = paper.printer
    _code_page_number(paper)
    if printer.roll_mm is not None and printer.roll_mm != paper.width_mm:
        raise ValueError(f"profile {paper.profile!r} is a {printer.roll_mm} mm printer "
                         f"({printer.width_mm:g} mm printable), not {paper.width_mm} mm; set paper_width_mm = "
                         f"{printer.roll_mm}, or a profile for {paper.width_mm} mm paper")
    if paper.qr_code == "native" and not printer.native_qr:
        raise ValueError(f"qr_code = \"native\" but profile {paper.profile!r} declares no QR command (GS ( k): "
                         "the ticket would print without its QR; set qr_code = \"auto\" to send it as an image")
    if not paper.native_qr and not printer.raster:
        raise ValueError(f"profile {paper.profile!r} can print neither a native QR nor a raster image "
                         "(GS v 0); choose the profile of a receipt printer, e.g. \"default\"")


def describe_paper(paper: Paper) -> str:
    """One line for ``kiosk check-config``: what the profile makes of the configured paper."""
    printer = paper.printer
    qr = "native (GS ( k)" if paper.native_qr else "as an image (GS v 0)"
    if paper.qr_code == "auto":
        qr += f", auto: profile {'has' if printer.native_qr else 'declares no'} QR command"
    source = "profile" if printer.roll_mm == paper.width_mm else "paper width; the profile does not say"
    return (f"profile {paper.profile}, {paper.width_mm} mm, {paper.columns} columns ({source}), "
            f"code page {paper.code_page.upper()} (ESC t {_code_page_number(paper)}), QR {qr}, "
            f"{'cutter' if printer.cutter else 'no cutter: a ticket ends with a feed'}")


def render_ticket(ticket: Ticket, *, office_name: str, service_name: str, opens_at: time | None,
                  qr_payload: str, paper: Paper, reprint: bool = False) -> bytes:
    """The ESC/POS bytes of one queue ticket, ending with a cut."""
    if not qr_payload:
        raise ValueError("qr_payload is empty; the ticket's QR code needs the ticket's check URL")
    p = _start(paper)
    if reprint:
        _banner(p, "CETAK ULANG")
    _header(p, paper, office_name, service_name)
    _number(p, paper, ticket.label)
    _service_day(p, paper, ticket.service_day, opens_at)
    _paragraph(p, paper, ["Diambil:", format_issued(ticket.issued_at)])
    _paragraph(p, paper, [_people_before(ticket.people_before)])
    _paragraph(p, paper, FREE_NOTICE, bold=True)
    _qr(p, paper, qr_payload)
    return _finish(p)


def render_full_slip(*, office_name: str, service_name: str, issued_at: datetime, last_day: date,
                     paper: Paper) -> bytes:
    """The slip printed instead of a number when every bookable day is full."""
    p = _start(paper)
    _header(p, paper, office_name, service_name)
    _banner(p, "KUOTA PENUH")
    _paragraph(p, paper, ["Kuota antrean sampai", format_day(last_day), "sudah penuh."])
    p.ln()
    _paragraph(p, paper, ["Anda tetap akan dilayani."], bold=True)
    _paragraph(p, paper, ["Silakan hubungi petugas di meja informasi."])
    p.ln()
    _paragraph(p, paper, ["Diambil:", format_issued(issued_at)])
    _paragraph(p, paper, FREE_NOTICE, bold=True)
    return _finish(p)


def render_test_slip(*, office_name: str, kiosk_id: str, printed_at: datetime, printer: str,
                     paper: Paper) -> bytes:
    """A technician's test print: proves the link, the code page, the QR and the cutter."""
    p = _start(paper)
    _header(p, paper, office_name, "TES PRINTER")
    _paragraph(p, paper, [f"Kiosk {kiosk_id}", format_issued(printed_at)])
    _paragraph(p, paper, [f"Status printer: {printer}", f"Kertas {paper.width_mm} mm"])
    _paragraph(p, paper, ["Bukan tiket antrean."], bold=True)
    _qr(p, paper, f"TEST:{kiosk_id}:{printed_at:%Y%m%d%H%M%S}".upper())
    return _finish(p)


def _people_before(count: int) -> str:
    return f"Antrean sebelum Anda: {count}" if count else "Tidak ada antrean sebelum Anda"


def _start(paper: Paper):
    p = _new_printer(paper)
    p.set(align="center")  # the whole ticket reads as a centred notice
    return p


def _new_printer(paper: Paper):
    """A Dummy reset with ESC @ and pinned to ``paper.code_page``.

    Pinning disables python-escpos's "magic" encoding, which would otherwise
    switch code pages (ESC t) mid-ticket or send GB18030 bytes for CJK text.
    ESC @ resets the code page too, so the pin must come after it. The ESC t
    number is the profile's lowest slot for the page (see
    :func:`kiosk.printer.profiles._usable_code_pages`).
    """
    number = _code_page_number(paper)  # loads the profile, after prepare() placed the escpos cache
    from escpos.magicencode import Encoder
    from escpos.printer.dummy import Dummy

    name = paper.code_page.upper()
    p = Dummy(profile=paper.profile, magic_encode_args={"encoder": Encoder({name: number})})
    p.hw("INIT")
    p.charcode(name)
    return p


def _code_page_number(paper: Paper) -> int:
    pages = paper.printer.code_pages
    name = paper.code_page.upper()
    if name not in pages:
        raise ValueError(f"code page {paper.code_page!r} is not in printer profile {paper.profile!r} "
                         f"(or python-escpos cannot encode it); use one of: {', '.join(sorted(pages))}")
    return pages[name]


def _paragraph(p, paper: Paper, phrases, *, bold: bool = False) -> None:
    if bold:
        p.set(bold=True)
    for line in fit(phrases, paper.columns, paper.code_page):
        p.textln(line)
    if bold:
        p.set(bold=False)


def _banner(p, words: str) -> None:
    """White on black, so a reprint or a full day is obvious at arm's length."""
    p.set(bold=True, invert=True)
    p.textln(f" {words} ")
    p.set(bold=False, invert=False)


def _header(p, paper: Paper, office_name: str, service_name: str) -> None:
    _paragraph(p, paper, [office_name], bold=True)
    _paragraph(p, paper, [service_name])
    p.ln()


def _number(p, paper: Paper, label: str) -> None:
    scale = _number_scale(paper, label)
    p.set(custom_size=True, width=scale, height=scale)
    p.textln(clean_text(label, paper.code_page))
    # GS ! 0, not normal_textsize: that sends ESC ! 0 three times and also drops bold.
    p.set(custom_size=True, width=1, height=1)
    p.ln()


def _number_scale(paper: Paper, label: str) -> int:
    """The largest multiplier (at most 4, so the number stays on one line) that fits the paper."""
    return max(1, min(4, paper.columns // max(1, len(label))))


def _service_day(p, paper: Paper, day: date, opens_at: time | None) -> None:
    _paragraph(p, paper, ["Dilayani:", format_day(day)], bold=True)
    if opens_at is not None:
        _paragraph(p, paper, [f"mulai pukul {opens_at:%H:%M}"])
    p.ln()


def _qr(p, paper: Paper, payload: str) -> None:
    """Native (GS ( k: a few dozen bytes) where the printer draws QR codes, else a raster image."""
    from escpos.constants import QR_ECLEVEL_M

    p.ln()
    native = paper.native_qr
    if not native:
        p.set(align="center")  # ESC a centres a raster image too; escpos' center= needs a pixel width
    # python-escpos print()s a notice about profiles without a pixel width on every image;
    # stdout is not our log.
    with contextlib.redirect_stdout(io.StringIO()):
        p.qr(payload, ec=QR_ECLEVEL_M, size=qr_module_dots(paper, payload), native=native)


def qr_module_dots(paper: Paper, payload: str) -> int:
    """The module size that keeps the whole symbol, with its quiet zone, on the paper."""
    size = len(payload.encode("utf-8"))
    version = next((v for v, cap in enumerate(QR_CAPACITY_M, 1) if size <= cap), None)
    if version is None:
        return QR_MIN_MODULE_DOTS
    modules = 17 + 4 * version + 8  # symbol plus a 4-module quiet zone each side
    return max(QR_MIN_MODULE_DOTS, min(QR_MODULE_DOTS[paper.width_mm], paper.dots // modules))


def _finish(p) -> bytes:
    p.cut()
    return p.output
