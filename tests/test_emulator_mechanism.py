"""Tests of the printer emulator's mechanism (no links, no threads) and of decode's real-time rows."""

import random
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from escpos_emulator.mechanism import Faults, Mechanism, status_byte
from escpos_emulator.wire import Wire, byte_time
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.layout import Paper, render_ticket
from kiosk.printer.decode import Decoder, RealTime, decode
from kiosk.printer.errors import DecodeError
from kiosk.ticket import Ticket

ESC, GS = b"\x1b", b"\x1d"
CUT = GS + b"V\x00"
JAKARTA = ZoneInfo("Asia/Jakarta")
PAYLOAD = "https://antrean.serangkota.go.id/c/3673/20261123/A-007?k=0badcafe"


def eot(n: int) -> bytes:
    return bytes((0x10, 0x04, n))


def ticket(number: int = 7, profile: str = "default") -> bytes:
    t = Ticket(id=number, office_id="3673", service="A", service_day=date(2026, 11, 23), number=number,
               issued_at=datetime(2026, 11, 20, 7, 55, tzinfo=JAKARTA), people_before=2)
    return render_ticket(t, office_name="Disdukcapil Kota Serang", service_name="Perekaman KTP Elektronik",
                         opens_at=time(8, 0), qr_payload=PAYLOAD, paper=Paper(profile=profile))


def qr_block(body: bytes) -> bytes:
    return GS + b"(k" + len(body).to_bytes(2, "little") + body


def texts(document) -> list[str]:
    return [line.text for line in document.lines if line.text]


# The status bytes an Epson printer sends for DLE EOT 1, 2, 3, 4, written out by hand.
STATUS_TABLE = [
    (Faults(), "12 12 12 12"),
    (Faults(paper="near_end"), "12 12 12 1e"),
    (Faults(paper="out"), "1a 32 12 7e"),
    (Faults(cover_open=True), "1a 16 12 12"),
    (Faults(offline=True), "1a 12 12 12"),
    (Faults(error=True), "1a 52 32 12"),
    (Faults(paper="out", cover_open=True), "1a 36 12 7e"),
]


@pytest.mark.parametrize("faults, expected", STATUS_TABLE)
def test_status_bytes_follow_the_epson_table(faults, expected):
    assert bytes(status_byte(n, faults) for n in (1, 2, 3, 4)).hex(" ") == expected


@pytest.mark.parametrize("faults, expected", STATUS_TABLE)
def test_mechanism_answers_dle_eot_in_every_state(faults, expected):
    m = Mechanism()
    m.faults = faults
    assert m.receive(eot(1) + eot(2) + eot(3) + eot(4), 0.0).hex(" ") == expected


def test_python_escpos_reads_the_answers_as_intended():
    """python-escpos' paper_status masks: 2 plenty, 1 near end, 0 out."""
    from escpos.constants import RT_MASK_LOWPAPER, RT_MASK_NOPAPER

    def paper_status(byte):
        if byte & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
            return 0
        return 1 if byte & RT_MASK_LOWPAPER == RT_MASK_LOWPAPER else 2

    assert [paper_status(status_byte(4, Faults(paper=p))) for p in ("ok", "near_end", "out")] == [2, 1, 0]


def test_a_ticket_prints_as_sent_and_answers_come_in_order():
    data = ticket()
    m = Mechanism()
    answers = m.receive(data[:100] + eot(1) + data[100:200] + eot(4) + data[200:] + eot(2), 10.0)
    assert answers == b"\x12\x12\x12"
    document, = m.take_documents()
    assert document.complete and not document.interrupted and document.ended_by == "cut"
    assert document.receipt == decode(data)[0]
    assert document.qr_payloads == [PAYLOAD] and "A-007" in texts(document)
    assert document.byte_count == len(data)  # the queries are not print data
    assert [command.args for command in m.realtime] == [b"\x01", b"\x04", b"\x02"]


def test_byte_times_come_from_the_link():
    m = Mechanism()
    m.receive(b"\x10\x04\x01", 0.0, 0.003, 0.001)  # an idle query before the ticket is not part of it
    data = ESC + b"@" + b"hello\n" + CUT
    m.receive(data[:4], 1.0, 1.004, 0.001)
    m.receive(data[4:], 2.0, 2.5, 0.001)
    document, = m.take_documents()
    assert (document.first_byte_at, document.last_byte_at) == (1.0, 2.5)


def test_dle_eot_inside_a_qr_block_is_qr_data_not_a_query():
    data = b"\x10\x04\x01https://x/\x10\x04\x02"
    sent = ESC + b"@" + qr_block(b"1A2\x00") + qr_block(b"1P0" + data) + qr_block(b"1Q0") + CUT
    m = Mechanism()
    assert m.receive(sent, 0.0) == b""
    assert m.realtime == []
    assert m.take_documents()[0].receipt.items[0].data == data


def test_a_length_byte_of_0x10_is_not_a_query_either():
    body = b"1P0" + b"x" * (0x0410 - 3)  # pL pH = 10 04, then cn '1'... and 0x10 0x04 0x01 nowhere else
    sent = qr_block(body) + eot(1)
    assert sent[3:5] == b"\x10\x04"
    m = Mechanism()
    assert m.receive(sent, 0.0) == b"\x12" and len(m.realtime) == 1


def test_paper_runs_out_mid_ticket():
    data = ticket()
    m = Mechanism()
    m.paper_out_after(150)
    assert m.receive(data[:100] + eot(1) + data[100:] + eot(1) + eot(4), 0.0) == b"\x12\x1a\x7e"
    document, = m.take_documents()
    assert document.interrupted and not document.complete and document.ended_by == "paper out"
    assert document.byte_count == 150 and m.dropped_bytes == len(data) - 150
    full = texts(decode(data)[0])
    assert texts(document) == full[:len(texts(document))] and 0 < len(texts(document)) < len(full)
    assert document.qr_payloads == []


def test_after_a_new_roll_the_next_ticket_prints_whole():
    m = Mechanism()
    m.paper_out_after(50)
    m.receive(ticket(1), 0.0)
    m.set_paper("ok")
    m.receive(ticket(2), 1.0)
    first, second = m.take_documents()
    assert first.interrupted and second.complete and "A-002" in texts(second)


def test_an_abandoned_ticket_does_not_swallow_the_next_one():
    """The kiosk stops sending when it sees paper out; its next ticket starts with ESC @ and prints."""
    data = ticket(1)
    m = Mechanism()
    m.paper_out_after(50)
    m.receive(data[:120], 0.0)
    m.set_paper("ok")
    m.receive(ticket(2), 1.0)
    first, second = m.take_documents()
    assert first.interrupted and second.complete and second.byte_count == len(ticket(2))
    assert m.dropped_bytes == 70


def test_the_rest_of_a_ticket_is_dropped_even_if_the_fault_clears_mid_way():
    data = ticket(1)
    m = Mechanism()
    m.receive(data[:100], 0.0)
    m.open_cover()
    m.receive(data[100:200], 1.0)
    m.close_cover()
    m.receive(data[200:], 2.0)
    document, = m.take_documents()
    assert document.interrupted and document.ended_by == "cover open"
    assert m.dropped_bytes == len(data) - 100 and not m.state.dropping


@pytest.mark.parametrize("fault, reason", [
    (lambda m: m.open_cover(), "cover open"),
    (lambda m: m.set_offline(True), "offline"),
    (lambda m: m.set_error(True), "error"),
    (lambda m: m.set_paper("out"), "paper out"),
])
def test_nothing_prints_while_it_cannot_but_queries_are_answered(fault, reason):
    m = Mechanism()
    fault(m)
    assert m.receive(ticket() + eot(1), 0.0) == b"\x1a"
    assert m.take_documents() == [] and m.dropped_bytes == len(ticket())
    assert not m.state.can_print and m.faults.reason == reason


def test_near_end_still_prints():
    m = Mechanism()
    m.set_paper("near_end")
    m.receive(ticket(), 0.0)
    assert m.take_documents()[0].complete


def test_status_modes():
    m = Mechanism(rng=random.Random(3))
    m.set_status_mode("silent")
    assert m.receive(eot(1) * 5, 0.0) == b""
    m.set_status_mode("garbage")
    answers = m.receive(eot(1) * 50, 0.0)
    assert len(answers) == 50 and all(byte & 0x80 for byte in answers) and len(set(answers)) > 5
    m.set_status_mode("normal")
    assert m.receive(eot(1), 0.0) == b"\x12"


def test_a_profile_without_cutter_ends_documents_at_the_next_esc_at():
    first, second = ticket(1, "ZJ-5870"), ticket(2, "ZJ-5870")
    assert CUT not in first
    m = Mechanism()
    m.receive(first + second, 0.0)
    document, = m.take_documents()
    assert not document.complete and not document.interrupted and document.ended_by == "ESC @"
    assert document.byte_count == len(first) and "A-001" in texts(document)
    m.end_document("flush")
    last, = m.take_documents()
    assert last.byte_count == len(second) and "A-002" in texts(last)
    assert any(hasattr(item, "width_bytes") for item in last.receipt.items)  # ZJ-5870 has no GS ( k: an image


def test_link_lost_mid_command_forgets_the_half_command():
    data = ticket(1)
    qr_at = data.index(GS + b"(k")
    m = Mechanism()
    m.receive(data[:qr_at + 6], 0.0)
    m.link_lost("unplugged", interrupted=True)
    m.receive(ticket(2), 1.0)
    lost, printed = m.take_documents()
    assert lost.interrupted and lost.ended_by == "unplugged"
    assert printed.complete and printed.byte_count == len(ticket(2))


def test_fault_api_rejects_bad_values_by_name():
    m = Mechanism()
    with pytest.raises(ValueError, match=r"paper 'empty' is not one of ok, near_end, out"):
        m.set_paper("empty")
    with pytest.raises(ValueError, match=r"status mode 'loud'"):
        m.set_status_mode("loud")
    with pytest.raises(ValueError, match=r"nbytes -1"):
        m.paper_out_after(-1)


# --- decode.py's real-time rows -------------------------------------------------------------

def test_decoder_hands_real_time_commands_to_the_hook():
    seen = []
    decoder = Decoder(on_realtime=seen.append)
    clear_buffers = b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08"
    decoder.feed(b"ab" + eot(4) + b"\x10\x05\x02" + b"\x10\x14\x01\x00\x05" + clear_buffers + b"cd\n" + CUT)
    assert seen == [RealTime("DLE EOT", b"\x04"), RealTime("DLE ENQ", b"\x02"),
                    RealTime("DLE DC4", b"\x01\x00\x05"), RealTime("DLE DC4", b"\x08\x01\x03\x14\x01\x06\x02\x08")]
    assert [s.size for s in seen] == [3, 3, 5, 10]


def test_real_time_commands_do_not_change_what_prints():
    data = ticket()
    assert decode(data[:50] + eot(1) + data[50:]) == decode(data)


def test_a_dle_split_across_chunks_waits_for_the_rest():
    seen = []
    decoder = Decoder(on_realtime=seen.append)
    for byte in eot(2):
        decoder.feed(bytes((byte,)))
    assert seen == [RealTime("DLE EOT", b"\x02")]


def test_out_of_range_real_time_parameter_is_strict_error_or_ignored():
    with pytest.raises(DecodeError, match=r"DLE EOT status at byte offset 0: DLE EOT n 9 is outside 1..4"):
        decode(eot(9))
    assert decode(eot(9) + b"x\n" + CUT, strict=False)[0].lines[0].text == "x"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2000), max_size=30), st.lists(st.integers(0, 100), max_size=5))
def test_any_chunking_and_interleaved_queries_give_the_same_document(cuts, picks):
    data = ticket()
    starts = [i for i, byte in enumerate(data) if byte == 0x1B]  # in this ticket every ESC starts a command
    queries_at = sorted({starts[pick % len(starts)] for pick in picks})
    bounds = [0, *queries_at]
    stream = b"".join(data[a:b] + eot(1) for a, b in zip(bounds, queries_at, strict=False)) + data[bounds[-1]:]
    points = sorted({cut % len(stream) for cut in cuts})
    m = Mechanism()
    pieces = zip([0, *points], [*points, len(stream)], strict=True)
    answers = b"".join(m.receive(stream[a:b], float(a)) for a, b in pieces)
    document, = m.take_documents()
    assert document.receipt == decode(data)[0] and document.byte_count == len(data)
    assert answers == b"\x12" * len(queries_at)


# --- the wire's schedule ---------------------------------------------------------------------

def test_byte_time_is_ten_bits():
    assert byte_time(19200) == pytest.approx(10 / 19200) and byte_time(None) == 0.0
    with pytest.raises(ValueError, match="baud 0 must be a positive int"):
        byte_time(0)


def test_wire_keeps_an_absolute_schedule():
    wire = Wire(0.01)
    wire.put(b"abcd", 100.0)
    assert wire.deadline() == pytest.approx(100.01)
    assert wire.take(100.005) is None
    assert wire.take(100.0105) == (b"a", 100.0, 100.0105)
    data, start, _ = wire.take(100.037)  # woke late: two more are due, the next slot is unchanged
    assert (data, start) == (b"bc", pytest.approx(100.01)) and wire.deadline() == pytest.approx(100.04)
    assert wire.take(100.5, limit=0) is None
    assert wire.take(100.5)[0] == b"d"
    wire.put(b"e", 100.6)  # idle line: starts when the byte arrives, not when the last one left
    assert wire.deadline() == pytest.approx(100.61)


def test_unpaced_wire_hands_everything_on_at_once():
    wire = Wire()
    wire.put(b"abc", 5.0)
    assert wire.take(5.0) == (b"abc", 5.0, 5.0) and wire.deadline() is None


# --- raster images (python-escpos' image(), and QR codes printed as images) -----------------

def test_a_raster_image_is_skipped_by_structure_whatever_its_bytes():
    bitmap = b"\x10\x04\x01\x1dV\x00\x1b@\x10\x04\x02"  # a query, a cut and an init, as dots
    sent = ESC + b"@" + GS + b"v0\x00" + bytes((len(bitmap), 0, 1, 0)) + bitmap + b"\n" + CUT + eot(4)
    m = Mechanism()
    assert m.receive(sent, 0.0) == b"\x12"
    document, = m.take_documents()
    image = document.receipt.items[0]
    assert (image.width, image.height, image.data) == (8 * len(bitmap), 1, bitmap)
    assert document.byte_count == len(sent) - 3


def test_a_ticket_with_its_qr_as_an_image_prints_whole():
    t = Ticket(id=1, office_id="3673", service="A", service_day=date(2026, 11, 23), number=1,
               issued_at=datetime(2026, 11, 20, 7, 55, tzinfo=JAKARTA), people_before=0)
    data = render_ticket(t, office_name="Disdukcapil", service_name="KTP", opens_at=None, qr_payload=PAYLOAD,
                         paper=Paper(qr_code="image"))
    m = Mechanism()
    assert m.receive(data + eot(1), 0.0) == b"\x12"
    document, = m.take_documents()
    image, = [item for item in document.receipt.items if hasattr(item, "width_bytes")]
    assert document.complete and "A-001" in texts(document) and image.align == "center"
    assert len(image.data) == image.width_bytes * image.height > 1000
    assert document.text().endswith(f"[image {image.width}x{image.height}]")
