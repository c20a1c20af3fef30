"""Read back the ESC/POS subset python-escpos emits for our tickets.

Bytes become receipts (one per cut) of styled lines and QR codes, which can
be shown as plain text or drawn as a PNG. The parser is table-driven:
:data:`COMMANDS` maps each command's prefix to its parameter length and to
what it does to the print head, so growing this into a printer emulator means
adding rows, not branches. It is incremental (:class:`Decoder.feed`) because
a printer link delivers bytes in arbitrary chunks. Real-time commands (DLE
EOT, DLE ENQ, DLE DC4) are rows too: they call a hook instead of printing,
which is how the printer emulator (``escpos_emulator``) answers status queries.
"""

from dataclasses import dataclass, field, replace
from typing import Callable

from kiosk.printer.errors import DecodeError

ESC, GS, LF, DLE = b"\x1b", b"\x1d", b"\n", b"\x10"
CELL_W, CELL_H = 12, 24  # font A in dots

# ESC t numbers as Epson assigns them, to Python codecs. Other makes differ:
# pass ``code_pages`` to match the profile.
CODE_PAGES = {
    0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 13: "cp857",
    14: "cp737", 15: "iso8859_7", 16: "cp1252", 17: "cp866", 18: "cp852", 19: "cp858",
    45: "cp1250", 46: "cp1251", 47: "cp1253", 48: "cp1254", 49: "cp1255",
    50: "cp1256", 51: "cp1257", 52: "cp1258",
}
ALIGNS = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
UNDERLINES = {0: 0, 1: 1, 2: 2, 48: 0, 49: 1, 50: 2}
FONTS = {0: 0, 1: 1, 48: 0, 49: 1}
QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}
QR_MODELS = {49: 1, 50: 2, 51: "micro"}


@dataclass(frozen=True)
class Style:
    bold: bool = False
    underline: int = 0
    invert: bool = False
    align: str = "left"
    width: int = 1  # character size multipliers
    height: int = 1
    font: int = 0


@dataclass(frozen=True)
class Line:
    """One printed line; its style is the one in force at its first character."""

    text: str
    style: Style = Style()


@dataclass(frozen=True)
class QrCode:
    data: bytes
    module_dots: int = 3
    ec: str = "L"
    model: int | str = 2
    align: str = "left"

    @property
    def payload(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class RasterImage:
    """GS v 0: a bitmap, ``width_bytes`` * 8 dots wide, one bit per dot, 1 = black."""

    data: bytes
    width_bytes: int
    height: int
    scale: tuple[int, int] = (1, 1)  # double width and/or height, from the mode byte
    align: str = "left"

    @property
    def width(self) -> int:
        return self.width_bytes * 8


@dataclass
class Receipt:
    """What one stretch of paper shows, in order. ``cut`` is False for a trailing, uncut stretch."""

    items: list = field(default_factory=list)
    cut: bool = False

    @property
    def lines(self) -> list[Line]:
        return [item for item in self.items if isinstance(item, Line)]

    @property
    def qr_payloads(self) -> list[str]:
        return [item.payload for item in self.items if isinstance(item, QrCode)]

    def text(self, columns: int = 32) -> str:
        """A plain-text picture: size multipliers become spacing, QR codes ``[QR payload]``.

        The blank feed before the cut is left out: it is paper, not content.
        """
        rows = [row for item in self.items for row in _text_rows(item, columns)]
        while rows and not rows[-1]:
            rows.pop()
        return "\n".join(rows)


@dataclass(frozen=True)
class RealTime:
    """A real-time command (DLE EOT, DLE ENQ, DLE DC4): acted on as it arrives, never printed.

    A printer answers or obeys it even while it cannot print; a decoder
    reading captured bytes just passes it to ``Head.on_realtime``, if set.
    """

    name: str  # "DLE EOT", "DLE ENQ" or "DLE DC4"
    args: bytes

    @property
    def size(self) -> int:
        """Bytes it took on the wire, prefix included."""
        return 2 + len(self.args)


class BadParameter(Exception):
    """A known command with a parameter the printer would reject."""


@dataclass
class _QrSetup:
    model: int | str = 2
    module_dots: int = 3
    ec: str = "L"
    data: bytes = b""


class Head:
    """What the printer remembers between commands: style, code page, the line being built."""

    def __init__(self, code_pages: dict[int, str]):
        self.code_pages = code_pages
        self.receipt = Receipt()
        self.finished: list[Receipt] = []
        self.on_realtime: Callable[[RealTime], None] | None = None
        self.initialize()

    def initialize(self) -> None:
        """ESC @: modes back to power-on defaults; unprinted text is discarded, as on the printer."""
        self.style = Style()
        self.codec = self.code_pages.get(0, "cp437")
        self.qr = _QrSetup()
        self.pending, self.pending_style = "", None

    def restyle(self, **changes) -> None:
        self.style = replace(self.style, **changes)

    def print_text(self, text: str) -> None:
        if not self.pending:
            self.pending_style = self.style
        self.pending += text

    def emit(self, item) -> None:
        """Put a line, QR code or image on paper: the one place output goes (an emulator gates it)."""
        self.receipt.items.append(item)

    def line_feed(self) -> None:
        self.emit(Line(self.pending, self.pending_style or self.style))
        self.pending, self.pending_style = "", None

    def feed(self, lines: int) -> None:
        """ESC d: printing a pending line is itself the first of the ``lines`` feeds."""
        if self.pending:
            self.line_feed()
            lines -= 1
        for _ in range(lines):
            self.line_feed()

    def print_qr(self) -> None:
        if not self.qr.data:
            raise BadParameter("QR print before any QR data was stored (GS ( k fn 80)")
        if self.pending:
            self.line_feed()
        qr = self.qr
        self.emit(QrCode(qr.data, qr.module_dots, qr.ec, qr.model, self.style.align))

    def print_raster(self, image: RasterImage) -> None:
        if self.pending:
            self.line_feed()
        self.emit(replace(image, align=self.style.align))

    def realtime(self, command: RealTime) -> None:
        if self.on_realtime is not None:
            self.on_realtime(command)

    def cut(self) -> None:
        if self.pending:
            self.line_feed()
        self.receipt.cut = True
        self.finished.append(self.receipt)
        self.receipt = Receipt()


def _one_of(table: dict, value: int, what: str):
    if value not in table:
        raise BadParameter(f"{what} {value} is not one of {sorted(table)}")
    return table[value]


# --- commands: each takes (head, parameter bytes) --------------------------------

def _restyle_from(head: Head, attribute: str, table: dict, args: bytes) -> None:
    head.restyle(**{attribute: _one_of(table, args[0], attribute)})


def _print_mode(head: Head, args: bytes) -> None:
    n = args[0]  # ESC ! packs font, bold, double height/width and underline in one byte
    head.restyle(font=n & 1, bold=bool(n & 0x08), height=2 if n & 0x10 else 1,
                 width=2 if n & 0x20 else 1, underline=1 if n & 0x80 else 0)


def _size(head: Head, args: bytes) -> None:
    width, height = (args[0] >> 4) + 1, (args[0] & 0x0F) + 1
    if width > 8 or height > 8:
        raise BadParameter(f"character size 0x{args[0]:02x} is beyond 8x8")
    head.restyle(width=width, height=height)


def _code_page(head: Head, args: bytes) -> None:
    if args[0] not in head.code_pages:
        raise BadParameter(f"code page {args[0]} is not in the decoder's table {sorted(head.code_pages)}; "
                           f"pass code_pages={{{args[0]}: '<python codec>', ...}}")
    head.codec = head.code_pages[args[0]]


def _two_d_code(head: Head, args: bytes) -> None:
    """GS ( k pL pH cn fn [m] data: only QR (cn 49) is understood."""
    cn, fn, body = args[2], args[3], args[4:]
    if cn != 49:
        raise BadParameter(f"2D code type {cn} is not QR (49)")
    if not body:
        raise BadParameter(f"QR function {fn} has no parameter")
    _one_of(QR_FUNCTIONS, fn, "QR function")(head, body)


def _qr_model(head: Head, body: bytes) -> None:
    head.qr.model = _one_of(QR_MODELS, body[0], "QR model")


def _qr_module(head: Head, body: bytes) -> None:
    if not 1 <= body[0] <= 16:
        raise BadParameter(f"QR module size {body[0]} is outside 1..16")
    head.qr.module_dots = body[0]


def _qr_ec(head: Head, body: bytes) -> None:
    head.qr.ec = _one_of(QR_EC, body[0], "QR error correction")


def _qr_store(head: Head, body: bytes) -> None:
    head.qr.data = bytes(body[1:])  # body[0] is m, always 48


def _qr_print(head: Head, body: bytes) -> None:
    head.print_qr()


QR_FUNCTIONS = {65: _qr_model, 67: _qr_module, 69: _qr_ec, 80: _qr_store, 81: _qr_print}


def _realtime(name: str, valid: range | None) -> Callable[[Head, bytes], None]:
    """A table row's action for a real-time command: hand it to the head's hook, print nothing."""
    def apply(head: Head, args: bytes) -> None:
        if valid is not None and args[0] not in valid:
            raise BadParameter(f"{name} n {args[0]} is outside {valid.start}..{valid.stop - 1}")
        head.realtime(RealTime(name, bytes(args)))
    return apply


# --- parameter lengths that depend on the bytes: (first PEEK bytes after the prefix)
# -> parameter count, or None when more bytes must arrive first.
PEEK = 5

def _cut_length(rest: bytes) -> int | None:
    if not rest:
        return None
    return 2 if rest[0] in (65, 66, 97, 98, 103, 104) else 1  # these modes carry a feed amount


def _block_length(rest: bytes) -> int | None:
    return None if len(rest) < 2 else 2 + rest[0] + 256 * rest[1]


RASTER_SCALES = {0: (1, 1), 1: (2, 1), 2: (1, 2), 3: (2, 2), 48: (1, 1), 49: (2, 1), 50: (1, 2), 51: (2, 2)}


def _raster_length(rest: bytes) -> int | None:
    """GS v 0 m xL xH yL yH d1...dk: k = width bytes * height; the data may hold any byte, 0x10 too."""
    if len(rest) < 5:
        return None
    return 5 + (rest[1] + 256 * rest[2]) * (rest[3] + 256 * rest[4])


def _raster(head: Head, args: bytes) -> None:
    width_bytes, height = args[1] + 256 * args[2], args[3] + 256 * args[4]
    scale = _one_of(RASTER_SCALES, args[0], "raster image mode")
    head.print_raster(RasterImage(bytes(args[5:]), width_bytes, height, scale))


# DLE DC4 fn and its parameters: 1 pulse (m t), 2 power off (a b), 8 clear buffers (d1..d7).
# Other functions are taken as fn m t, the common shape.
DC4_LENGTHS = {1: 3, 2: 3, 8: 8}


def _dc4_length(rest: bytes) -> int | None:
    return DC4_LENGTHS.get(rest[0], 3) if rest else None


@dataclass(frozen=True)
class Command:
    name: str
    length: int | Callable[[bytes], int | None]  # parameter bytes after the prefix
    apply: Callable[[Head, bytes], None]


COMMANDS: dict[bytes, Command] = {
    LF: Command("LF", 0, lambda head, args: head.line_feed()),
    ESC + b"@": Command("ESC @ initialize", 0, lambda head, args: head.initialize()),
    ESC + b"!": Command("ESC ! print mode", 1, _print_mode),
    ESC + b"E": Command("ESC E bold", 1, lambda head, args: head.restyle(bold=bool(args[0] & 1))),
    ESC + b"-": Command("ESC - underline", 1, lambda head, args: _restyle_from(head, "underline", UNDERLINES, args)),
    ESC + b"M": Command("ESC M font", 1, lambda head, args: _restyle_from(head, "font", FONTS, args)),
    ESC + b"a": Command("ESC a align", 1, lambda head, args: _restyle_from(head, "align", ALIGNS, args)),
    ESC + b"t": Command("ESC t code page", 1, _code_page),
    ESC + b"d": Command("ESC d feed lines", 1, lambda head, args: head.feed(args[0])),
    GS + b"!": Command("GS ! character size", 1, _size),
    GS + b"B": Command("GS B reverse", 1, lambda head, args: head.restyle(invert=bool(args[0] & 1))),
    GS + b"V": Command("GS V cut", _cut_length, lambda head, args: head.cut()),
    GS + b"(k": Command("GS ( k 2D code", _block_length, _two_d_code),
    GS + b"v0": Command("GS v 0 raster image", _raster_length, _raster),  # python-escpos' image(), QR as image
    # Real-time commands. Found here, by command structure, so a 0x10 that is a
    # parameter (a GS ( k length, QR data) is never mistaken for one.
    DLE + b"\x04": Command("DLE EOT status", 1, _realtime("DLE EOT", range(1, 5))),
    DLE + b"\x05": Command("DLE ENQ request", 1, _realtime("DLE ENQ", range(0, 3))),
    DLE + b"\x14": Command("DLE DC4 real-time", _dc4_length, _realtime("DLE DC4", None)),
}
_PREFIX_SIZES = sorted({len(prefix) for prefix in COMMANDS}, reverse=True)
# Starts of prefixes, so a chunk ending in ESC or GS ( waits for the rest.
_PARTIAL_PREFIXES = {prefix[:i] for prefix in COMMANDS for i in range(1, len(prefix))}


def _lookup(buf: bytearray, pos: int) -> tuple[bytes, Command | None]:
    for size in _PREFIX_SIZES:
        prefix = bytes(buf[pos:pos + size])
        if prefix in COMMANDS:
            return prefix, COMMANDS[prefix]
    return b"", None


class Decoder:
    """Feed it bytes as they arrive; it hands back each receipt once it is cut.

    ``strict`` (the default) raises :class:`DecodeError` at the first command
    it does not know. With ``strict=False`` it behaves like a forgiving
    printer: an unknown ESC/GS command is skipped as its two prefix bytes (its
    parameters, unknowable, may then show up as text), a bad parameter
    ignores the command, any other control byte is dropped.
    """

    def __init__(self, strict: bool = True, code_pages: dict[int, str] | None = None,
                 on_realtime: Callable[[RealTime], None] | None = None, head: Head | None = None):
        """``on_realtime`` is called with each real-time command as it completes.

        ``head`` lets an emulator bring its own :class:`Head` subclass (one that
        prints only while the paper is in, say); ``code_pages`` is then the head's.
        """
        self.strict = strict
        self.head = head if head is not None else Head(CODE_PAGES if code_pages is None else code_pages)
        if on_realtime is not None:
            self.head.on_realtime = on_realtime
        self._buf = bytearray()
        self._base = 0  # offset of _buf[0] in everything fed so far

    def feed(self, data: bytes) -> list[Receipt]:
        self._buf += data
        pos = 0
        while pos < len(self._buf):
            step = self._step(pos)
            if step is None:
                break  # a command split across chunks: wait for the rest
            pos = step
        del self._buf[:pos]
        self._base += pos
        return self._take_finished()

    def discard_partial(self) -> int:
        """Forget a command cut short (its sender went away); the number of bytes forgotten."""
        count = len(self._buf)
        self._base += count
        self._buf.clear()
        return count

    def finish(self) -> list[Receipt]:
        """End of input: a truncated command is an error (strict) and uncut content a last receipt."""
        if self._buf and self.strict:
            raise DecodeError(f"input ends inside a command at byte offset {self._base}: "
                              f"{bytes(self._buf[:8]).hex(' ')}; the sender stopped mid-command",
                              self._base, self._buf[0])
        self._buf.clear()
        head = self.head
        if head.pending:
            head.line_feed()
        if head.receipt.items:
            head.finished.append(head.receipt)
            head.receipt = Receipt()
        return self._take_finished()

    def _take_finished(self) -> list[Receipt]:
        done, self.head.finished = self.head.finished, []
        return done

    def _step(self, pos: int) -> int | None:
        """Consume what starts at ``pos``; the position after it, or None if it is incomplete."""
        if self._buf[pos] >= 0x20:
            return self._text(pos)
        prefix, command = _lookup(self._buf, pos)
        if command is None:
            if bytes(self._buf[pos:]) in _PARTIAL_PREFIXES:
                return None
            return self._unknown(pos)
        start = pos + len(prefix)
        length = command.length
        if not isinstance(length, int):
            length = length(bytes(self._buf[start:start + PEEK]))
        if length is None or start + length > len(self._buf):
            return None
        self._apply(command, bytes(self._buf[start:start + length]), pos)
        return start + length

    def _text(self, pos: int) -> int:
        end = pos
        while end < len(self._buf) and self._buf[end] >= 0x20:
            end += 1
        self.head.print_text(bytes(self._buf[pos:end]).decode(self.head.codec, errors="replace"))
        return end

    def _apply(self, command: Command, args: bytes, pos: int) -> None:
        try:
            command.apply(self.head, args)
        except BadParameter as exc:
            if self.strict:
                raise DecodeError(f"{command.name} at byte offset {self._base + pos}: {exc}; "
                                  "pass strict=False to ignore it", self._base + pos, self._buf[pos]) from None

    def _unknown(self, pos: int) -> int:
        byte = self._buf[pos]
        if self.strict:
            following = bytes(self._buf[pos:pos + 2]).hex(" ")
            raise DecodeError(f"unknown ESC/POS command at byte offset {self._base + pos}: byte 0x{byte:02x} "
                              f"(bytes {following}); pass strict=False to skip unknown commands",
                              self._base + pos, byte)
        prefixed = bytes([byte]) in (ESC, GS, b"\x1c", b"\x10")
        return min(len(self._buf), pos + (2 if prefixed else 1))


def decode(data: bytes, *, strict: bool = True, code_pages: dict[int, str] | None = None) -> list[Receipt]:
    """All receipts in ``data``; a last one with ``cut=False`` holds anything after the final cut."""
    decoder = Decoder(strict=strict, code_pages=code_pages)
    return decoder.feed(data) + decoder.finish()


# --- plain text -------------------------------------------------------------------

def _text_rows(item, columns: int) -> list[str]:
    if isinstance(item, QrCode):
        return [_aligned(row, item.align, columns) for row in _chunks(f"[QR {item.payload}]", columns)]
    if isinstance(item, RasterImage):
        size = f"[image {item.width * item.scale[0]}x{item.height * item.scale[1]}]"
        return [_aligned(row, item.align, columns) for row in _chunks(size, columns)]
    width = item.style.width
    rows = _chunks(item.text, max(1, columns // width))
    return [_aligned(_widen(row, width), item.style.align, columns) for row in rows]


def _chunks(text: str, size: int) -> list[str]:
    """Cut where the printer's own line end would: at ``size`` characters, words or not."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _widen(text: str, width: int) -> str:
    """A character ``width`` times as wide takes ``width`` columns: pad it with spaces."""
    return "".join(char + " " * (width - 1) for char in text)


def _aligned(row: str, align: str, columns: int) -> str:
    room = max(0, columns - len(row))
    indent = {"center": room // 2, "right": room}.get(align, 0)  # str.center rounds oddly
    return (" " * indent + row).rstrip()


# --- PNG --------------------------------------------------------------------------

def render_png(receipt: Receipt, path, width_px: int = 384) -> None:
    """Draw ``receipt`` as the printer would, ``width_px`` dots wide (384 = 58 mm, 576 = 80 mm)."""
    from PIL import Image

    blocks = [block for item in receipt.items for block in _item_blocks(item, width_px)]
    margin = CELL_H // 2
    canvas = Image.new("L", (width_px, sum(img.height for img, _ in blocks) + 2 * margin), 255)
    y = margin
    for img, align in blocks:
        canvas.paste(img, (_x(align, img.width, width_px), y))
        y += img.height
    canvas.save(path, "PNG")


def _x(align: str, width: int, width_px: int) -> int:
    room = max(0, width_px - width)
    return {"center": room // 2, "right": room}.get(align, 0)


def _item_blocks(item, width_px: int) -> list:
    """Images of one receipt item; what cannot be drawn (a QR too long for any symbol) is named instead."""
    try:
        if isinstance(item, QrCode):
            return [(_qr_image(item), item.align)]
        if isinstance(item, RasterImage):
            return [(_raster_image(item), item.align)]
    except Exception as exc:  # noqa: BLE001  a printer prints something for any bytes; so do we
        item = Line(f"[{type(item).__name__} not drawable: {type(exc).__name__}]", Style(align=item.align))
    style = item.style
    rows = _chunks(item.text, max(1, width_px // CELL_W // style.width))
    return [(_text_image(row, style), style.align) for row in rows]


def _text_image(text: str, style: Style):
    """Pillow's built-in bitmap font is 6x11 and monospaced: doubled, it is font A's 12x24 cell.

    It has Latin-1 only (Pillow raises on anything else): other characters, such as a code page's
    box drawing or the decoder's U+FFFD for a byte it could not read, are drawn as ``?``.
    """
    from PIL import Image, ImageDraw, ImageFont

    text = text.encode("latin-1", errors="replace").decode("latin-1")
    inverted = style.invert and bool(text)
    img = Image.new("L", (max(1, len(text)) * CELL_W // 2, CELL_H // 2), 0 if inverted else 255)
    draw = ImageDraw.Draw(img)
    draw.text((0, 0), text, fill=255 if inverted else 0, font=ImageFont.load_default_imagefont())
    if style.underline and text:
        draw.line([(0, img.height - 1), (img.width, img.height - 1)], fill=255 if inverted else 0)
    img = img.resize((img.width * 2, img.height * 2), Image.NEAREST)
    if style.bold:
        img = _embolden(img, inverted)
    return img.resize((img.width * style.width, img.height * style.height), Image.NEAREST)


def _embolden(img, inverted: bool):
    """Overprint one dot to the right, as an emphasising print head does."""
    from PIL import ImageChops

    shifted = ImageChops.offset(img, 1, 0)
    return ImageChops.lighter(img, shifted) if inverted else ImageChops.darker(img, shifted)


def _qr_image(qr: QrCode):
    import qrcode
    from qrcode import constants

    levels = {"L": constants.ERROR_CORRECT_L, "M": constants.ERROR_CORRECT_M,
              "Q": constants.ERROR_CORRECT_Q, "H": constants.ERROR_CORRECT_H}
    code = qrcode.QRCode(error_correction=levels[qr.ec], box_size=qr.module_dots, border=2)
    code.add_data(qr.data)
    code.make(fit=True)
    return code.make_image().get_image().convert("L")


def _raster_image(image: RasterImage):
    from PIL import Image, ImageOps

    bitmap = Image.frombytes("1", (image.width, image.height), image.data)  # PIL's 1 is white, the printer's black
    bitmap = ImageOps.invert(bitmap.convert("L"))
    width, height = image.scale
    return bitmap.resize((bitmap.width * width, bitmap.height * height), Image.NEAREST)
