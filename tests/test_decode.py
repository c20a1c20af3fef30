"""Tests of kiosk.printer.decode: ESC/POS bytes back to receipts, text and PNG."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kiosk.errors import KioskError
from kiosk.layout import Paper, render_full_slip, render_ticket
from kiosk.printer.decode import Decoder, Line, QrCode, Style, decode, render_png
from kiosk.printer.errors import DecodeError
from kiosk.ticket import Ticket

ESC, GS = b"\x1b", b"\x1d"
CUT = GS + b"V\x00"
PAYLOAD = "https://antrean.serangkota.go.id/c/3673/20261123/A-001?k=4f9c2d1e"


def qr_bytes(data: bytes, size: int = 6) -> bytes:
    def block(body: bytes) -> bytes:
        return GS + b"(k" + len(body).to_bytes(2, "little") + body

    return (block(b"1A2\x00") + block(b"1C" + bytes([size])) + block(b"1E1")
            + block(b"1P0" + data) + block(b"1Q0"))


def ticket_bytes(width_mm: int = 58) -> bytes:
    ticket = Ticket(id=1, office_id="3673", service="B", service_day=date(2026, 11, 24), number=42,
                    issued_at=datetime(2026, 11, 24, 9, 5, tzinfo=ZoneInfo("Asia/Jakarta")), people_before=3)
    return render_ticket(ticket, office_name="Disdukcapil Kota Serang", service_name="Akta Kelahiran",
                         opens_at=time(8, 0), qr_payload=PAYLOAD, paper=Paper(width_mm=width_mm))


def one(data: bytes):
    receipts = decode(data)
    assert len(receipts) == 1, receipts
    return receipts[0]


# --- commands -------------------------------------------------------------------------

def test_plain_lines_and_cut():
    receipt = one(b"abc\ndef\n" + CUT)
    assert receipt.cut and [line.text for line in receipt.lines] == ["abc", "def"]


def test_styles_apply_from_the_first_character_of_a_line():
    data = ESC + b"a\x01" + ESC + b"E\x01" + GS + b"B\x01" + ESC + b"-\x01" + b"x\n" + CUT
    assert one(data).lines == [Line("x", Style(bold=True, underline=1, invert=True, align="center"))]


def test_print_mode_bits():
    data = ESC + b"!\xb9" + b"x\n" + ESC + b"!\x00" + b"y\n" + CUT  # font B, bold, 2x2, underline
    first, second = one(data).lines
    assert first.style == Style(bold=True, underline=1, width=2, height=2, font=1)
    assert second.style == Style()


def test_character_size():
    data = GS + b"!\x33" + b"A-001\n" + GS + b"!\x00" + b"z\n" + GS + b"!\x70" + b"w\n" + CUT
    sizes = [(line.style.width, line.style.height) for line in one(data).lines]
    assert sizes == [(4, 4), (1, 1), (8, 1)]


def test_init_resets_style_and_drops_unprinted_text():
    data = ESC + b"E\x01" + b"lost" + ESC + b"@" + b"kept\n" + CUT
    assert one(data).lines == [Line("kept", Style())]


def test_code_page_switch_decodes_following_text():
    data = b"\x80" + ESC + b"t\x10" + b"\x80\n" + CUT  # cp437 0x80 is C-cedilla, cp1252 0x80 the euro
    assert one(data).lines[0].text == "\u00c7\u20ac"


def test_custom_code_page_table():
    receipt, = decode(ESC + b"t\x63" + b"\xa4\n" + CUT, code_pages={0: "cp437", 99: "iso8859_15"})
    assert receipt.lines[0].text == "\u20ac"


def test_feed_counts_a_pending_line_as_the_first_feed():
    assert [line.text for line in one(b"a" + ESC + b"d\x03" + CUT).lines] == ["a", "", ""]
    assert [line.text for line in one(ESC + b"d\x02" + CUT).lines] == ["", ""]


def test_cut_with_feed_amount_takes_two_parameter_bytes():
    receipts = decode(b"a\n" + GS + b"VA\x10" + b"b\n" + GS + b"V\x01")
    assert [[line.text for line in r.lines] for r in receipts] == [["a"], ["b"]]


def test_qr_sequence():
    data = ESC + b"a\x01" + qr_bytes(PAYLOAD.encode(), size=5) + CUT
    assert one(data).items == [QrCode(PAYLOAD.encode(), module_dots=5, ec="M", model=2, align="center")]
    assert one(data).qr_payloads == [PAYLOAD]


def test_qr_prints_a_pending_line_first():
    items = one(b"text" + qr_bytes(b"x") + CUT).items
    assert [type(item) for item in items] == [Line, QrCode] and items[0].text == "text"


def test_receipts_split_at_each_cut_and_keep_uncut_tail():
    receipts = decode(b"one\n" + CUT + b"two\n" + CUT + b"tail")
    assert [(r.lines[0].text, r.cut) for r in receipts] == [("one", True), ("two", True), ("tail", False)]


def test_nothing_after_the_last_cut_gives_no_empty_receipt():
    assert len(decode(b"a\n" + CUT)) == 1


# --- errors -----------------------------------------------------------------------------

def test_strict_mode_names_offset_and_byte_of_garbage():
    with pytest.raises(DecodeError, match=r"offset 5\b.*0x1b.*1b 5a") as caught:
        decode(ESC + b"@abc" + ESC + b"Z\x00" + CUT)
    assert (caught.value.offset, caught.value.byte) == (5, 0x1B)
    assert isinstance(caught.value, KioskError)


def test_strict_mode_rejects_stray_control_bytes():
    with pytest.raises(DecodeError, match=r"offset 2: byte 0x07"):
        decode(b"ab\x07cd\n")


def test_lenient_mode_skips_unknown_commands():
    receipt, = decode(b"ab\x07cd" + ESC + b"Z" + b"ef\n" + CUT, strict=False)
    assert [line.text for line in receipt.lines] == ["abcdef"]


def test_bad_parameter_is_an_error_only_when_strict():
    data = b"x" + ESC + b"a\x07" + b"y\n" + CUT
    with pytest.raises(DecodeError, match=r"ESC a align at byte offset 1: align 7"):
        decode(data)
    assert decode(data, strict=False)[0].lines[0].text == "xy"


def test_unknown_code_page_is_named():
    with pytest.raises(DecodeError, match=r"code page 99 .*code_pages="):
        decode(ESC + b"t\x63")


def test_non_qr_two_d_code_is_rejected():
    with pytest.raises(DecodeError, match="2D code type 48"):
        decode(GS + b"(k\x03\x000A\x00")


def test_qr_print_without_data_is_rejected():
    with pytest.raises(DecodeError, match="before any QR data"):
        decode(GS + b"(k\x03\x001Q0")


def test_truncated_command_at_end_is_named_when_strict():
    with pytest.raises(DecodeError, match=r"offset 3"):
        decode(b"abc" + GS + b"(k\x40\x00" + b"1P0")
    assert [r.lines[0].text for r in decode(b"abc" + GS + b"(k\x40\x00", strict=False)] == ["abc"]


def test_unknown_bytes_raise_only_in_strict_mode_example():
    with pytest.raises(DecodeError):
        decode(b"\x00")
    assert decode(b"\x00", strict=False) == []


# --- incremental --------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_feeding_in_chunks_gives_the_same_receipts(chunk):
    data = ticket_bytes() + ticket_bytes(80)
    decoder = Decoder()
    receipts = []
    for i in range(0, len(data), chunk):
        receipts += decoder.feed(data[i:i + chunk])
    receipts += decoder.finish()
    assert receipts == decode(data) and len(receipts) == 2


def test_a_receipt_is_handed_back_only_once_cut():
    decoder = Decoder()
    assert decoder.feed(b"abc\n") == []
    assert [r.lines[0].text for r in decoder.feed(CUT)] == ["abc"]
    assert decoder.finish() == []


def test_error_offsets_count_from_the_first_chunk():
    decoder = Decoder()
    decoder.feed(b"0123456789")
    with pytest.raises(DecodeError) as caught:
        decoder.feed(b"ab\x07")
    assert caught.value.offset == 12


# --- on real layout output -------------------------------------------------------------------

def test_decodes_a_rendered_ticket():
    receipt = one(ticket_bytes())
    assert [line.text for line in receipt.lines if line.style.width == 4] == ["B-042"]
    assert receipt.qr_payloads == [PAYLOAD]
    assert "Dilayani:" in [line.text for line in receipt.lines]


def test_decodes_a_full_slip_strictly():
    data = render_full_slip(office_name="Disdukcapil", service_name="KTP",
                            issued_at=datetime(2026, 11, 24, 9, 5, tzinfo=ZoneInfo("Asia/Jakarta")),
                            last_day=date(2026, 12, 8), paper=Paper())
    assert "Selasa, 8 Desember 2026" in [line.text for line in one(data).lines]


# --- text -----------------------------------------------------------------------------------

def test_text_rendering_of_a_ticket():
    assert one(ticket_bytes()).text(32) == "\n".join([
        "    Disdukcapil Kota Serang",
        "         Akta Kelahiran",
        "",
        "      B   -   0   4   2",
        "",
        "           Dilayani:",
        "    Selasa, 24 November 2026",
        "       mulai pukul 08:00",
        "",
        "   Diambil: 24-11-2026 09:05",
        "    Antrean sebelum Anda: 3",
        "      Layanan ini GRATIS.",
        "      Jangan gunakan calo.",
        "",
        "[QR https://antrean.serangkota.g",
        "o.id/c/3673/20261123/A-001?k=4f9",
        "             c2d1e]",
    ])


def test_text_aligns_right_and_folds_long_lines():
    data = ESC + b"a\x02" + b"abc\n" + ESC + b"a\x00" + GS + b"!\x10" + b"abcdef\n" + CUT
    assert one(data).text(columns=6) == "   abc\na b c\nd e f"


def test_text_keeps_inner_blank_lines_but_drops_the_feed_before_the_cut():
    assert one(b"a\n\nb\n" + ESC + b"d\x06" + CUT).text() == "a\n\nb"


# --- PNG ------------------------------------------------------------------------------------

@pytest.mark.parametrize("width_mm, width_px", [(58, 384), (80, 576)])
def test_png_has_the_paper_width_and_a_qr(tmp_path, width_mm, width_px):
    path = tmp_path / "t.png"
    render_png(one(ticket_bytes(width_mm)), path, width_px=width_px)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width == width_px and img.height > 400
        bottom = img.convert("L").crop((0, img.height // 2, img.width, img.height))
        assert bottom.getextrema()[0] == 0  # black modules of the QR in the lower half


def test_png_scales_text_by_the_size_multipliers(tmp_path):
    def ink_box(data):
        render_png(one(data), tmp_path / "x.png")
        with Image.open(tmp_path / "x.png") as img:
            return Image.eval(img.convert("L"), lambda v: 255 - v).getbbox()

    left, top, right, bottom = ink_box(b"HH\n" + CUT)
    big_left, big_top, big_right, big_bottom = ink_box(GS + b"!\x11" + b"HH\n" + CUT)
    assert (big_right - big_left, big_bottom - big_top) == (2 * (right - left), 2 * (bottom - top))
    assert right - left > 12  # two characters drawn, not one


def black_share(img) -> float:
    return img.histogram()[0] / (img.width * img.height)


def test_png_draws_inverted_text_white_on_black(tmp_path):
    for invert, dark in ((b"\x01", True), (b"\x00", False)):
        render_png(one(GS + b"B" + invert + b"XXXX\n" + CUT), tmp_path / "i.png")
        with Image.open(tmp_path / "i.png") as img:
            cells = img.convert("L").crop((0, 12, 48, 36))  # the four character cells of the first line
            assert (black_share(cells) > 0.5) is dark


# --- never a crash on what a printer may be sent -------------------------------------------

def test_png_draws_characters_outside_latin1_as_question_marks(tmp_path):
    receipt, = decode(ESC + b"t\x00caf\x82 \xb0\xdb" + ESC + b"t\x11\x80\x86\n" + CUT)
    assert receipt.lines[0].text == "caf\u00e9 \u2591\u2588\u0410\u0416"
    render_png(receipt, tmp_path / "t.png")
    with Image.open(tmp_path / "t.png") as img:
        assert img.width == 384


def test_png_names_a_qr_too_long_to_draw(tmp_path):
    receipt, = decode(qr_bytes(b"x" * 3000) + CUT)  # beyond any QR version at error correction L
    render_png(receipt, tmp_path / "t.png")
    assert (tmp_path / "t.png").exists()


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), page=st.sampled_from([0, 2, 16, 17, 18, 19, 45, 46, 52]))
def test_any_bytes_in_any_code_page_decode_and_draw(tmp_path_factory, data, page):
    receipts = decode(ESC + b"@" + ESC + b"t" + bytes([page]) + data + b"\n" + CUT, strict=False)
    path = tmp_path_factory.mktemp("png") / "t.png"
    for receipt in receipts:
        receipt.text(32)
        render_png(receipt, path)
