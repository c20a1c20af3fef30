"""Tests of the "sim" printer backend used for demos."""

import io
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from kiosk.layout import Paper, render_ticket
from kiosk.printer import PrinterStatus, make_printer
from kiosk.printer.decode import decode
from kiosk.printer.errors import PrinterError
from kiosk.printer.sim import SimPrinter, frame
from kiosk.ticket import Ticket

PAYLOAD = "https://antrean.serangkota.go.id/c/3673/20261123/A-007?k=0badc0de"


def ticket_bytes(number: int = 7, width_mm: int = 58) -> bytes:
    ticket = Ticket(id=number, office_id="3673", service="A", service_day=date(2026, 11, 23), number=number,
                    issued_at=datetime(2026, 11, 23, 7, 55, tzinfo=ZoneInfo("Asia/Jakarta")), people_before=6)
    return render_ticket(ticket, office_name="Disdukcapil Kota Serang", service_name="KTP Elektronik",
                         opens_at=time(8, 0), qr_payload=PAYLOAD, paper=Paper(width_mm=width_mm))


def test_backend_is_registered_as_sim(tmp_path):
    printer = make_printer("sim", out_dir=str(tmp_path), stream=io.StringIO())
    assert isinstance(printer, SimPrinter)


def test_prints_a_framed_ticket_and_saves_png_and_text(tmp_path):
    stream = io.StringIO()
    data = ticket_bytes()
    with SimPrinter(out_dir=str(tmp_path), stream=stream) as printer:
        printer.send(data)
    expected_text = decode(data)[0].text(32)
    assert stream.getvalue() == frame(expected_text, 32, "#0001") + "\n"
    assert (tmp_path / "ticket-0001.txt").read_text(encoding="utf-8") == expected_text + "\n"
    with Image.open(tmp_path / "ticket-0001.png") as img:
        assert (img.format, img.width) == ("PNG", 384)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ticket-0001.png", "ticket-0001.txt"]


def test_frame_is_a_box_of_the_paper_width():
    assert frame("ab\n  c", 4, "#1").split("\n") == ["+-#1-+", "|ab  |", "|  c |", "+----+"]


def test_stream_shows_the_label_and_payload():
    stream = io.StringIO()
    with SimPrinter(stream=stream) as printer:
        printer.send(ticket_bytes())
    shown = stream.getvalue()
    assert "A   -   0   0   7" in shown and "Dilayani:" in shown and "[QR https://antrean" in shown


def test_defaults_to_stdout(capsys):
    with SimPrinter() as printer:
        printer.send(ticket_bytes())
    assert "Antrean sebelum Anda: 6" in capsys.readouterr().out


def test_nothing_is_shown_until_the_cut(tmp_path):
    stream = io.StringIO()
    data = ticket_bytes()
    printer = SimPrinter(out_dir=str(tmp_path), stream=stream)
    printer.open()
    for i in range(0, len(data) - 1, 7):
        printer.send(data[i:min(i + 7, len(data) - 1)])
    assert stream.getvalue() == "" and list(tmp_path.iterdir()) == []
    printer.send(data[-1:])
    assert stream.getvalue().count("+-#0001") == 1 and printer.printed == 1
    printer.close()


def test_numbering_continues_after_existing_files(tmp_path):
    (tmp_path / "ticket-0007.png").write_bytes(b"")
    (tmp_path / "ticket-0003.txt").write_text("")
    (tmp_path / "notes-0099.txt").write_text("")
    with SimPrinter(out_dir=str(tmp_path), stream=io.StringIO()) as printer:
        printer.send(ticket_bytes(1) + ticket_bytes(2))
    assert (tmp_path / "ticket-0008.png").exists() and (tmp_path / "ticket-0009.txt").exists()
    assert "A-002" in (tmp_path / "ticket-0009.txt").read_text().replace("   ", "")


def test_out_dir_is_created(tmp_path):
    out = tmp_path / "demo" / "tickets"
    with SimPrinter(out_dir=str(out), stream=io.StringIO()) as printer:
        printer.send(ticket_bytes())
    assert (out / "ticket-0001.png").exists()


def test_80mm_width(tmp_path):
    stream = io.StringIO()
    with SimPrinter(out_dir=str(tmp_path), stream=stream, width_px=576) as printer:
        printer.send(ticket_bytes(width_mm=80))
    assert {len(row) for row in stream.getvalue().splitlines()} == {50}
    with Image.open(tmp_path / "ticket-0001.png") as img:
        assert img.width == 576


def test_status_follows_open_and_close():
    printer = SimPrinter(stream=io.StringIO())
    assert printer.status() is PrinterStatus.OFFLINE
    printer.open()
    assert printer.status() is PrinterStatus.OK
    printer.close()
    assert printer.status() is PrinterStatus.OFFLINE


def test_send_before_open_fails():
    with pytest.raises(PrinterError, match="not open"):
        SimPrinter(stream=io.StringIO()).send(b"x\n")


def test_close_shows_an_uncut_tail():
    # Profiles without a cutter (e.g. POS-5890) end a ticket with a feed only.
    stream = io.StringIO()
    with SimPrinter(stream=stream) as printer:
        printer.send(b"tanpa pemotong\n")
        assert stream.getvalue() == ""
    assert "tanpa pemotong" in stream.getvalue()


def test_unknown_commands_are_skipped_not_fatal():
    stream = io.StringIO()
    with SimPrinter(stream=stream) as printer:
        printer.send(b"\x1bZok\n\x1dV\x00")
    assert "|ok" in stream.getvalue()


def test_unwritable_out_dir_is_a_printer_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PrinterError, match="out_dir"):
        SimPrinter(out_dir=str(blocker / "sub"), stream=io.StringIO()).open()


def test_too_narrow_width_is_refused():
    with pytest.raises(PrinterError, match="width_px 8"):
        SimPrinter(width_px=8)


ANY_BYTES = bytes(range(0x80, 0x100))


def any_bytes_document() -> bytes:
    """Every high byte in three code pages (box drawing, Cyrillic, accents): most are not Latin-1."""
    return b"\x1b@" + b"".join(b"\x1bt" + bytes([n]) + ANY_BYTES + b"\n" for n in (0, 17, 2)) + b"\x1dV\x00"


def test_any_characters_are_saved_and_the_printer_stays_ok(tmp_path):
    stream = io.StringIO()
    with SimPrinter(out_dir=str(tmp_path), stream=stream) as printer:
        printer.send(any_bytes_document() + ticket_bytes())
        assert printer.status() is PrinterStatus.OK and printer.printed == 2
    text = (tmp_path / "ticket-0001.txt").read_text(encoding="utf-8")
    assert "\u2591" in text and "\u0416" in text  # CP437 light shade, CP866 Zhe
    for number in (1, 2):
        with Image.open(tmp_path / f"ticket-000{number}.png") as img:
            assert img.format == "PNG"


def test_a_ticket_that_cannot_be_saved_makes_the_status_error_until_it_is(tmp_path):
    out = tmp_path / "tickets"
    printer = SimPrinter(out_dir=str(out), stream=io.StringIO())
    printer.open()
    try:
        out.rmdir()
        out.write_text("")  # the directory is gone, a file is in its way (a pulled USB stick, say)
        printer.send(ticket_bytes())  # taken, as a printer takes bytes it then fails to print
        assert printer.status() is PrinterStatus.ERROR and "ticket-0001.txt" in printer.save_error
        assert printer.status() is PrinterStatus.ERROR  # still: it is not saved
        out.unlink()
        out.mkdir()
        assert printer.status() is PrinterStatus.OK and printer.save_error is None
        assert "A-007" in (out / "ticket-0001.txt").read_text().replace("   ", "")
        printer.send(ticket_bytes(8))
        assert (out / "ticket-0002.png").exists() and printer.status() is PrinterStatus.OK
    finally:
        printer.close()
