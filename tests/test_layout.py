"""Tests of kiosk.layout: what a ticket and a "quota full" slip print.

Golden files under tests/golden/ hold the exact bytes of reference tickets and
are compared byte for byte. After an intended layout change, regenerate them
with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_layout.py

then read the decoded text in the diff of the test output (or run
``kiosk.printer.decode``) before committing the new files.
"""

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.indonesian import format_day
from kiosk import layout
from kiosk.layout import Paper, render_full_slip, render_ticket
from kiosk.printer.decode import QrCode, RasterImage, decode
from kiosk.ticket import Ticket

GOLDEN = Path(__file__).parent / "golden"
JAKARTA = ZoneInfo("Asia/Jakarta")
PAYLOAD = "https://antrean.serangkota.go.id/c/3673/20261123/A-001?k=4f9c2d1e"  # 66 chars
OFFICE = "Dinas Kependudukan dan Pencatatan Sipil Kota Serang"
WEIRD_OFFICE = "Kantor Ñusantara — “Cipocok” ☃ 中文 é"


def make_ticket(**changes) -> Ticket:
    fields = dict(id=17, office_id="3673", service="A", service_day=date(2026, 11, 23), number=1,
                  issued_at=datetime(2026, 11, 20, 7, 55, tzinfo=JAKARTA), people_before=12)
    fields.update(changes)
    return Ticket(**fields)


def ticket_bytes(paper=Paper(), ticket=None, **changes) -> bytes:
    options = dict(office_name=OFFICE, service_name="Perekaman KTP Elektronik", opens_at=time(8, 0),
                   qr_payload=PAYLOAD, paper=paper)
    options.update(changes)
    return render_ticket(ticket or make_ticket(), **options)


def slip_bytes(paper=Paper(), **changes) -> bytes:
    options = dict(office_name=OFFICE, service_name="Perekaman KTP Elektronik",
                   issued_at=datetime(2026, 11, 20, 7, 55, tzinfo=JAKARTA), last_day=date(2026, 11, 30),
                   paper=paper)
    options.update(changes)
    return render_full_slip(**options)


def only_receipt(data: bytes):
    receipts = decode(data)
    assert len(receipts) == 1 and receipts[0].cut, receipts
    return receipts[0]


def texts(data: bytes) -> list[str]:
    return [line.text for line in only_receipt(data).lines]


def check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    expected = path.read_bytes()
    if data != expected:
        at = next((i for i, (a, b) in enumerate(zip(data, expected)) if a != b), min(len(data), len(expected)))
        pytest.fail(f"{name} differs from byte {at} ({data[at:at + 12]!r} vs {expected[at:at + 12]!r}); "
                    f"now:\n{decode(data, strict=False)[0].text()}\n\ngolden:\n"
                    f"{decode(expected, strict=False)[0].text()}\nif intended, rerun with UPDATE_GOLDEN=1")


# --- golden files --------------------------------------------------------------------

@pytest.mark.parametrize("name, make", [
    ("ticket_58.bin", lambda: ticket_bytes()),
    ("ticket_80.bin", lambda: ticket_bytes(Paper(width_mm=80))),
    ("reprint_58.bin", lambda: ticket_bytes(reprint=True)),
    ("no_queue_58.bin", lambda: ticket_bytes(ticket=make_ticket(people_before=0), opens_at=None)),
    ("full_slip_58.bin", lambda: slip_bytes()),
    ("full_slip_80.bin", lambda: slip_bytes(Paper(width_mm=80))),
    ("replaced_chars_58.bin", lambda: ticket_bytes(office_name=WEIRD_OFFICE)),
    ("ticket_pos5890_58.bin", lambda: ticket_bytes(Paper(profile="POS-5890"))),  # QR as an image, ESC t 0
    ("ticket_tm_t88v_80.bin", lambda: ticket_bytes(Paper(80, profile="TM-T88V"))),  # 42 columns
])
def test_matches_golden_bytes(name, make):
    check_golden(name, make())


def test_rendering_is_deterministic():
    assert ticket_bytes() == ticket_bytes()


# --- ticket content --------------------------------------------------------------------

def test_decoded_ticket_has_the_label_very_large():
    big = [line for line in only_receipt(ticket_bytes()).lines if line.text == "A-001"]
    assert len(big) == 1
    assert (big[0].style.width, big[0].style.height) == (4, 4)
    assert big[0].style.align == "center"


def test_text_after_the_number_is_normal_size_again():
    lines = only_receipt(ticket_bytes()).lines
    after = lines[[line.text for line in lines].index("A-001") + 1:]
    assert all((line.style.width, line.style.height) == (1, 1) for line in after)


def test_decoded_ticket_has_service_day_issue_time_and_queue():
    lines = texts(ticket_bytes())
    assert lines[lines.index("Dilayani:") + 1] == "Senin, 23 November 2026"
    assert lines[lines.index("Senin, 23 November 2026") + 1] == "mulai pukul 08:00"
    assert "Diambil: 20-11-2026 07:55" in lines
    assert "Antrean sebelum Anda: 12" in lines
    assert [line for line in lines if line][-2:] == ["Layanan ini GRATIS.", "Jangan gunakan calo."]


def test_80mm_ticket_keeps_the_dilayani_line_whole():
    assert "Dilayani: Senin, 23 November 2026" in texts(ticket_bytes(Paper(width_mm=80)))


def test_service_day_is_bold():
    lines = only_receipt(ticket_bytes()).lines
    assert [line.style.bold for line in lines if line.text.startswith(("Dilayani", "Senin"))] == [True, True]


def test_office_name_is_bold_and_centered():
    first = only_receipt(ticket_bytes()).lines[0]
    assert (first.text, first.style.bold, first.style.align) == ("Dinas Kependudukan dan", True, "center")


def test_no_opening_time_prints_no_mulai_line():
    assert not [line for line in texts(ticket_bytes(opens_at=None)) if "mulai" in line]


def test_empty_queue_says_so():
    lines = texts(ticket_bytes(ticket=make_ticket(people_before=0)))
    assert "Tidak ada antrean sebelum Anda" in lines
    assert not [line for line in lines if "sebelum Anda:" in line]


def test_reprint_is_marked_at_the_top_inverted():
    first = only_receipt(ticket_bytes(reprint=True)).lines[0]
    assert (first.text.strip(), first.style.invert, first.style.bold) == ("CETAK ULANG", True, True)


def test_first_print_has_no_reprint_mark():
    assert not [line for line in texts(ticket_bytes()) if "CETAK ULANG" in line]


def test_issue_time_is_printed_in_its_own_timezone():
    issued = datetime(2026, 11, 20, 0, 30, tzinfo=timezone(timedelta(hours=9)))  # WIT, e.g. Jayapura
    assert "Diambil: 20-11-2026 00:30" in texts(ticket_bytes(ticket=make_ticket(issued_at=issued)))


# --- QR ------------------------------------------------------------------------------------

def test_qr_payload_decodes_exactly():
    assert only_receipt(ticket_bytes()).qr_payloads == [PAYLOAD]


def test_qr_is_native_not_a_raster_image():
    data = ticket_bytes()
    assert b"\x1d(k" in data
    for raster in (b"\x1dv0", b"\x1b*", b"\x1d(L", b"\x1d8L"):
        assert raster not in data


def test_qr_uses_error_correction_m_and_a_58mm_module():
    qr = [item for item in only_receipt(ticket_bytes()).items if isinstance(item, QrCode)]
    assert [(q.ec, q.module_dots, q.model, q.align) for q in qr] == [("M", 6, 2, "center")]


def test_qr_module_shrinks_for_long_payloads_but_fits_the_paper():
    long_payload = "https://example.go.id/" + "x" * 300  # version 13 at M: 69 modules
    size = layout.qr_module_dots(Paper(), long_payload)
    assert size < 6 and (17 + 4 * 13 + 8) * size <= 384


@pytest.mark.parametrize("version", range(1, len(layout.QR_CAPACITY_M) + 1))
def test_qr_capacity_table_matches_the_qrcode_package(version):
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    def needed(size):
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
        code.add_data(b"\xff" * size)  # bytes force byte mode, the worst case
        return code.best_fit()

    capacity = layout.QR_CAPACITY_M[version - 1]
    assert (needed(capacity), needed(capacity + 1)) == (version, version + 1)


def test_empty_qr_payload_is_refused():
    # python-escpos silently prints nothing for an empty QR; we must not.
    with pytest.raises(ValueError, match="qr_payload"):
        ticket_bytes(qr_payload="")


# --- size ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [58, 80])
def test_ticket_fits_in_600_bytes(width):
    data = ticket_bytes(Paper(width_mm=width), reprint=True)
    assert len(data) <= 600, len(data)


# --- code page and replaced characters ------------------------------------------------------

def test_code_page_is_set_once_right_after_init():
    data = ticket_bytes(office_name=WEIRD_OFFICE)
    assert data.startswith(b"\x1b@\x1bt\x00")
    assert data.count(b"\x1bt") == 1


def test_characters_outside_the_code_page_are_replaced():
    lines = texts(ticket_bytes(office_name=WEIRD_OFFICE))
    assert lines[:2] == ["Kantor \u00d1usantara -", '"Cipocok" ? ?? \u00e9']  # CP437 has Ñ and é


def test_accents_the_code_page_has_are_printed_in_it():
    data = ticket_bytes(Paper(code_page="CP850"), office_name="R\u00e9sum\u00e9 \u00d1o\u00f1o \u00c5s")
    assert b"R\x82sum\x82 \xa5o\xa4o \x8fs" in data  # CP850's bytes for é, Ñ, ñ, Å
    assert texts(data)[0] == "R\u00e9sum\u00e9 \u00d1o\u00f1o \u00c5s"


def test_a_decomposed_accent_is_composed_before_the_code_page_is_asked():
    data = ticket_bytes(office_name="Jose\u0301")  # e + combining acute: é in CP437
    assert b"Jos\x82" in data and texts(data)[0] == "Jos\u00e9"


@pytest.mark.parametrize("code_page, text, expected", [
    ("CP437", "\u0141\u00f3d\u017a \u0150r\u00f6k \u0111\u01b0\u1eddng", "L\u00f3dz Or\u00f6k duong"),
    ("CP852", "\u0141\u00f3d\u017a \u0150r\u00f6k", "\u0141\u00f3d\u017a \u0150r\u00f6k"),  # CP852 has them all
    ("CP437", "Stra\u00dfe \u20ac 5", "Stra\u00dfe EUR 5"),  # CP437 has ß, not the euro
    ("CP850", "\u00c6gir \u0153uvre \u2603", "\u00c6gir oeuvre ?"),
])
def test_characters_a_page_lacks_are_transliterated(code_page, text, expected):
    assert layout.clean_text(text, code_page) == expected


def test_cjk_is_not_sent_as_gb18030():
    # python-escpos's magic encoder sends Chinese as GB18030; pinning the code page stops it.
    data = ticket_bytes(office_name="中文")
    assert "中文".encode("gb18030") not in data
    assert texts(data)[0] == "??"


def test_code_page_characters_are_encoded_in_it():
    paper = Paper(code_page="CP858")  # has the euro sign at 0xD5
    data = ticket_bytes(paper, office_name="Loket € 5", service_name="Jalan Raya ß")
    assert data.startswith(b"\x1b@\x1bt\x13") and b"Loket \xd5 5" in data
    assert texts(data)[:2] == ["Loket \u20ac 5", "Jalan Raya \u00df"]  # ß has no decomposition: kept


def test_control_characters_cannot_inject_commands():
    data = ticket_bytes(office_name="Kantor\x1b@\x1dV\x00 Serang\tBaru")
    assert data.count(b"\x1b@") == 1 and data.count(b"\x1dV") == 1
    assert texts(data)[0] == "Kantor?@?V? Serang Baru"


@pytest.mark.parametrize("text, expected", [
    ("\u201cCipocok\u201d \u2018x\u2019", "\"Cipocok\" 'x'"),
    ("a \u2013 b \u2014 c", "a - b - c"),
    ("Caf\u00e9 \u00d1o\u00f1o", "Cafe Nono"),
    ("tunggu\u2026", "tunggu..."),
    ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
    ("  spaced \n out\t", "spaced out"),
    ("\uff21\uff0d\uff10\uff10\uff11", "A-001"),  # full-width forms
])
def test_clean_text(text, expected):
    assert layout.clean_text(text) == expected


# --- wrapping -----------------------------------------------------------------------------------

LONG_OFFICE = ("Dinas Kependudukan dan Pencatatan Sipil Kabupaten Pandeglang "
               "Provinsi Banten Unit Pelayanan Terpadu Kecamatan Labuan")


@pytest.mark.parametrize("width, columns", [(58, 32), (80, 48)])
def test_office_name_wraps_at_the_paper_columns_between_words(width, columns):
    lines = texts(ticket_bytes(Paper(width_mm=width), office_name=LONG_OFFICE))
    office = lines[:lines.index("Perekaman KTP Elektronik")]
    assert " ".join(office) == LONG_OFFICE
    assert all(len(line) <= columns for line in office)
    assert max(len(line) for line in office) > columns - 12  # uses the width, not some narrower limit


def test_80mm_lines_are_wider_than_58mm():
    assert len(texts(ticket_bytes(Paper(width_mm=80), office_name=LONG_OFFICE))[0]) > 32


def test_wrapping_balances_a_short_last_line():
    assert layout.fit([OFFICE], 48) == ["Dinas Kependudukan dan", "Pencatatan Sipil Kota Serang"]


def test_fit_keeps_phrases_together_and_splits_only_overlong_words():
    assert layout.fit(["Dilayani:", "Selasa, 30 September 2026"], 32) == ["Dilayani:", "Selasa, 30 September 2026"]
    assert layout.fit(["Dilayani:", "Senin, 1 Juni 2026"], 32) == ["Dilayani: Senin, 1 Juni 2026"]
    assert layout.fit(["x" * 40], 32) == ["x" * 32, "x" * 8]


@settings(max_examples=60, deadline=None)
@given(office=st.text(max_size=120), service=st.text(max_size=60), width=st.sampled_from([58, 80]))
def test_any_names_give_a_decodable_ticket_within_the_paper(office, service, width):
    paper = Paper(width_mm=width)
    receipt = only_receipt(ticket_bytes(paper, office_name=office, service_name=service))
    assert all(len(line.text) * line.style.width <= paper.columns for line in receipt.lines)
    assert receipt.qr_payloads == [PAYLOAD]
    assert "A-001" in [line.text for line in receipt.lines]


def test_long_label_shrinks_to_stay_on_one_line():
    receipt = only_receipt(ticket_bytes(ticket=make_ticket(service="ABCD", number=12345)))
    label = [line for line in receipt.lines if line.text == "ABCD-12345"]
    assert label and label[0].style.width * len("ABCD-12345") <= 32


# --- full slip -----------------------------------------------------------------------------------

def test_full_slip_says_full_until_the_last_day_and_promises_service():
    text = " ".join(texts(slip_bytes()))
    for phrase in ("KUOTA PENUH", "Kuota antrean sampai Senin, 30 November 2026 sudah penuh.",
                   "Anda tetap akan dilayani.", "Silakan hubungi petugas di meja informasi.",
                   "Diambil: 20-11-2026 07:55", "Layanan ini GRATIS. Jangan gunakan calo."):
        assert phrase in text


def test_full_slip_has_no_number_and_no_qr():
    data = slip_bytes()
    receipt = only_receipt(data)
    assert receipt.qr_payloads == [] and b"\x1d(k" not in data
    assert all(line.style.width == 1 for line in receipt.lines)


def test_full_slip_is_small():
    assert len(slip_bytes()) <= 600


# --- dates ---------------------------------------------------------------------------------------

def test_format_day_example():
    assert format_day(date(2026, 11, 23)) == "Senin, 23 November 2026"


def test_format_day_names_all_weekdays():
    monday = date(2026, 11, 23)
    days = [format_day(monday + timedelta(days=i)).split(",")[0] for i in range(7)]
    assert days == ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]


def test_format_day_names_all_months():
    months = [format_day(date(2027, m, 1)).split(" ")[2] for m in range(1, 13)]
    assert months == ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
                      "September", "Oktober", "November", "Desember"]


def test_format_day_has_no_leading_zero():
    assert format_day(date(2027, 1, 1)) == "Jumat, 1 Januari 2027"


# --- paper ---------------------------------------------------------------------------------------

def test_paper_columns():
    assert (Paper().columns, Paper(width_mm=80).columns) == (32, 48)


@pytest.mark.parametrize("width, profile, columns, dots", [
    (80, "TM-T88V", 42, 512), (80, "TM-T20II", 48, 576), (58, "POS-5890", 32, 384),
    (58, "ZJ-5870", 32, 384), (58, "RP-F10-58mm", 36, 432), (80, "default", 48, 576),
])
def test_columns_and_dots_come_from_the_profile(width, profile, columns, dots):
    paper = Paper(width, profile=profile)
    assert (paper.columns, paper.dots) == (columns, dots)
    lines = [line.text for line in decode(ticket_bytes(paper, office_name=LONG_OFFICE))[0].lines]
    office = lines[:lines.index("Perekaman KTP Elektronik")]
    assert max(len(line) for line in office) <= columns
    assert max(len(line) for line in office) > columns - 12


def test_tm_t88v_ticket_is_laid_out_for_42_columns():
    receipt = only_receipt(ticket_bytes(Paper(80, profile="TM-T88V")))
    assert "Layanan ini GRATIS. Jangan gunakan calo." in [line.text for line in receipt.lines]  # 40 of 42
    assert all(len(line.text) * line.style.width <= 42 for line in receipt.lines)


def test_a_profile_for_other_paper_is_refused():
    with pytest.raises(ValueError, match=r"'POS-5890' is a 58 mm printer.*paper_width_mm = 58"):
        layout.check_paper(Paper(80, profile="POS-5890"))
    with pytest.raises(ValueError, match=r"'TM-T88V' is a 80 mm printer"):
        layout.check_paper(Paper(58, profile="TM-T88V"))


# --- per profile: QR and code page -----------------------------------------------------------

@pytest.mark.parametrize("profile", ["POS-5890", "ZJ-5870"])
def test_profiles_without_qr_get_the_qr_as_an_image(profile):
    paper = Paper(profile=profile)
    layout.check_paper(paper)
    data = ticket_bytes(paper)
    assert b"\x1d(k" not in data and b"\x1dv0" in data
    image, = [item for item in decode(data, strict=False)[0].items if isinstance(item, RasterImage)]
    assert image.width <= paper.dots


@pytest.mark.parametrize("profile", ["POS-5890", "ZJ-5870"])
def test_native_qr_on_a_profile_without_it_is_refused(profile):
    with pytest.raises(ValueError, match=rf"qr_code = \"native\" but profile '{profile}'.*qr_code = \"auto\""):
        layout.check_paper(Paper(profile=profile, qr_code="native"))


def test_a_profile_that_prints_no_image_either_is_refused():
    with pytest.raises(ValueError, match="neither a native QR nor a raster image"):
        layout.check_paper(Paper(80, profile="TM-U220"))


@pytest.mark.parametrize("profile, code_page, number", [
    ("POS-5890", "CP437", 0),  # also at 50 and 52: python-escpos alone sends ESC t 52
    ("POS-5890", "CP858", 19),  # also at 53
    ("POS-5890", "CP852", 18),  # also at 54
    ("TM-T88V", "CP858", 19), ("ZJ-5870", "CP850", 2), ("default", "CP1252", 16),
])
def test_code_page_is_selected_by_the_profiles_lowest_slot(profile, code_page, number):
    width = 80 if profile == "TM-T88V" else 58
    data = ticket_bytes(Paper(width, code_page, profile))
    assert data.startswith(b"\x1b@\x1bt" + bytes([number])) and data.count(b"\x1bt") == 1


def test_pos5890_ticket_decodes_with_its_own_code_page_table():
    from kiosk.printer import profiles

    table = profiles.load("POS-5890").codecs_by_number()
    data = ticket_bytes(Paper(profile="POS-5890"), office_name="Caf\u00e9 \u00c7ilegon")
    receipt, *_ = decode(data, strict=False, code_pages=table)
    assert receipt.lines[0].text == "Caf\u00e9 \u00c7ilegon"


def test_a_code_page_python_escpos_cannot_encode_is_refused():
    # POS-5890 lists CP747 but python-escpos has no table for it: text() would raise at the first ticket.
    with pytest.raises(ValueError, match=r"'CP747' is not in printer profile 'POS-5890'"):
        layout.check_paper(Paper(code_page="CP747", profile="POS-5890"))


def test_describe_paper_says_how_the_qr_goes():
    line = layout.describe_paper(Paper(profile="POS-5890"))
    assert "32 columns (profile)" in line and "CP437 (ESC t 0)" in line
    assert "QR as an image (GS v 0), auto: profile declares no QR command" in line
    assert "QR native (GS ( k)" in layout.describe_paper(Paper(80, profile="TM-T88V"))


PAGES_WITH_CODECS = [("default", "CP437"), ("default", "CP850"), ("default", "CP858"), ("default", "CP852"),
                     ("default", "CP1252"), ("POS-5890", "CP437"), ("POS-5890", "CP866"), ("ZJ-5870", "CP850")]


@settings(max_examples=80, deadline=None)
@given(office=st.text(max_size=80), page=st.sampled_from(PAGES_WITH_CODECS))
def test_any_text_in_any_page_prints_only_characters_the_page_has(office, page):
    from kiosk.printer import profiles

    paper = Paper(58, page[1], page[0])
    receipt, *_ = decode(ticket_bytes(paper, office_name=office), code_pages=profiles.load(page[0]).codecs_by_number())
    assert not [line.text for line in receipt.lines if "\ufffd" in line.text]  # every byte sent is in the page
    assert all(len(line.text) * line.style.width <= paper.columns for line in receipt.lines)


def test_unsupported_width_names_the_value():
    with pytest.raises(ValueError, match="76"):
        Paper(width_mm=76)


def test_unknown_code_page_names_it_and_the_choices():
    with pytest.raises(ValueError, match=r"'CP999'.*CP437"):
        ticket_bytes(Paper(code_page="CP999"))


def test_code_page_name_is_case_insensitive():
    assert ticket_bytes(Paper(code_page="cp437")) == ticket_bytes()


def test_unknown_profile_names_it():
    with pytest.raises(ValueError, match="'TM-NOPE'"):
        layout.check_paper(Paper(profile="TM-NOPE"))


# --- import cost -----------------------------------------------------------------------------------

def run_python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != layout.PICKLE_DIR_ENV}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          check=False)


def test_importing_layout_loads_no_heavy_library():
    result = run_python("import sys, kiosk.layout; "
                        "print(sorted(m for m in ('escpos', 'PIL', 'qrcode', 'yaml') if m in sys.modules))")
    assert result.stdout.strip() == "[]", result.stderr


def test_prepare_keeps_the_capabilities_cache_in_the_given_dir(tmp_path):
    result = run_python(f"import os, kiosk.layout as l; l.prepare({str(tmp_path)!r}); "
                        f"print(os.environ[{layout.PICKLE_DIR_ENV!r}])")
    assert result.stdout.strip() == str(tmp_path), result.stderr
    assert list(tmp_path.glob("*.capabilities.pickle"))


def test_prepare_defaults_to_the_user_cache(tmp_path):
    result = run_python("import kiosk.layout as l; l.prepare()", XDG_CACHE_HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "antrean").glob("*.capabilities.pickle"))


def test_image_qr_on_request():
    data = ticket_bytes(Paper(qr_code="image"))
    assert b"\x1d(k" not in data and b"\x1dv0" in data  # a raster GS v 0, no native QR
    assert decode(data, strict=False)[0].cut


# --- check-config ----------------------------------------------------------------------------------

def check_config(tmp_path, printer: str) -> subprocess.CompletedProcess:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'id = "k1"\ndata_dir = "{tmp_path}"\n[office]\nid = "3673"\nname = "Disdukcapil"\n'
                    f'timezone = "Asia/Jakarta"\n[printer]\nbackend = "dummy"\n{printer}\n'
                    '[[services]]\ncode = "A"\nname = "KTP"\n')
    return subprocess.run([sys.executable, "-m", "kiosk", "check-config", str(path)], capture_output=True,
                          text=True, check=False)


def test_check_config_says_a_58mm_profile_gets_its_qr_as_an_image(tmp_path):
    result = check_config(tmp_path, 'profile = "POS-5890"')
    assert result.returncode == 0, result.stderr
    assert "QR as an image (GS v 0), auto: profile declares no QR command" in result.stdout
    assert "CP437 (ESC t 0)" in result.stdout


@pytest.mark.parametrize("printer, message", [
    ('profile = "ZJ-5870"\nqr_code = "native"', "declares no QR command (GS ( k)"),
    ('profile = "TM-T88V"', "'TM-T88V' is a 80 mm printer"),
])
def test_check_config_refuses_what_the_profile_cannot_print(tmp_path, printer, message):
    result = check_config(tmp_path, printer)
    assert result.returncode == 2 and message in result.stderr, result.stderr
