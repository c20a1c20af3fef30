"""What python-escpos's printer database says about a model: QR, paper, columns, code pages.

The database (escpos-printer-db, bundled as ``escpos/capabilities.json``)
is the only description of a printer the kiosk has before it prints. Import
this after :func:`kiosk.layout.prepare`: its first use loads the database.
"""

import codecs
import functools
from dataclasses import dataclass

# Profiles give the printable width (48 to 80 mm); up to this it is a 58 mm roll, above an 80 mm one.
ROLL_LIMIT_MM = 60


@dataclass(frozen=True)
class PrinterProfile:
    name: str
    native_qr: bool  # features.qrCode: the printer draws a QR from GS ( k
    raster: bool  # features.bitImageRaster: GS v 0, how a QR is sent as an image
    cutter: bool  # without one python-escpos ends a ticket with a feed
    width_mm: float | None  # printable width, when the profile knows its paper
    dots: int | None
    font_a_columns: int | None
    code_pages: dict  # name -> ESC t number, only pages python-escpos can encode

    @property
    def roll_mm(self) -> int | None:
        """58 or 80: the roll this printer takes, None when the profile does not say."""
        if self.width_mm is None:
            return None
        return 58 if self.width_mm <= ROLL_LIMIT_MM else 80

    @property
    def columns(self) -> int | None:
        """Font A columns, but only when the profile knows its paper (``default`` says 42 for any)."""
        return self.font_a_columns if self.roll_mm is not None else None

    def codecs_by_number(self) -> dict[int, str]:
        """ESC t number -> Python codec for every slot of this profile, for the ESC/POS decoder."""
        data = _capabilities()
        table = {}
        for number, name in data["profiles"][self.name]["codePages"].items():
            codec = data["encodings"].get(name, {}).get("python_encode")
            if codec and _codec_exists(codec):
                table[int(number)] = codec
        return table


@functools.lru_cache(maxsize=16)
def load(name: str) -> PrinterProfile:
    """The profile called ``name``; ValueError naming it and the known ones if there is none."""
    profiles = _capabilities()["profiles"]
    if name not in profiles:
        raise ValueError(f"printer profile {name!r} is unknown to python-escpos; "
                         f"use one of: {', '.join(sorted(profiles))}")
    raw = profiles[name]
    features, width = raw.get("features", {}), raw.get("media", {}).get("width", {})
    mm, dots = _number(width.get("mm")), _number(width.get("pixels"))
    return PrinterProfile(
        name=name, native_qr=bool(features.get("qrCode")), raster=bool(features.get("bitImageRaster")),
        cutter=bool(features.get("paperFullCut") or features.get("paperPartCut")),
        width_mm=mm if dots else None, dots=int(dots) if mm and dots else None,
        font_a_columns=_number(raw.get("fonts", {}).get("0", {}).get("columns")),
        code_pages=_usable_code_pages(raw.get("codePages", {})))


def _usable_code_pages(slots: dict) -> dict[str, int]:
    """Each encodable page at its lowest ESC t number.

    The database lists some pages in several slots (POS-5890 has CP437 at
    0, 50 and 52). python-escpos inverts the table, so the last slot wins and
    it selects CP437 with ESC t 52; the lowest is the Epson-standard one that
    clones implement, and python-escpos itself prefers low slots when it
    picks a page for a character.
    """
    pages: dict[str, int] = {}
    for number, name in sorted(slots.items(), key=lambda item: int(item[0])):
        if name not in pages and _encodable(name):
            pages[name] = int(number)
    return pages


def _encodable(name: str) -> bool:
    """python-escpos can turn text into this page's bytes (it has a table or a Python codec)."""
    encoding = _capabilities()["encodings"].get(name, {})
    if "data" in encoding:
        return True
    return bool(encoding.get("python_encode")) and _codec_exists(encoding["python_encode"])


def _codec_exists(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _capabilities() -> dict:
    from escpos.capabilities import CAPABILITIES

    return CAPABILITIES
