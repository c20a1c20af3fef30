"""The printer emulator on real links: a pty opened with pyserial and TCP sockets on 127.0.0.1.

Waiting is done on events, never by sleeping: a status answer read back
proves that everything sent before the query has been processed, and the
emulator's own waits (documents, bytes received) are Condition-based.
"""

import os
import socket
import threading
import time
from datetime import date, datetime
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
import serial
from escpos_emulator import Emulator, PtyLink, TcpLink

from kiosk.layout import Paper, render_ticket
from kiosk.printer.decode import decode
from kiosk.ticket import Ticket

JAKARTA = ZoneInfo("Asia/Jakarta")
PAYLOAD = "https://antrean.serangkota.go.id/c/3673/20261123/A-012?k=4f9c2d1e"
TIMEOUT = 5.0  # generous upper bounds on events that take milliseconds


def eot(n: int) -> bytes:
    return bytes((0x10, 0x04, n))


def ticket(number: int = 12) -> bytes:
    t = Ticket(id=number, office_id="3673", service="A", service_day=date(2026, 11, 23), number=number,
               issued_at=datetime(2026, 11, 20, 7, 55, tzinfo=JAKARTA), people_before=4)
    return render_ticket(t, office_name="Disdukcapil Kota Serang", service_name="Perekaman KTP Elektronik",
                         opens_at=clock_time(8, 0), qr_payload=PAYLOAD, paper=Paper())


def big_label(document) -> str:
    return next(line.text for line in document.lines if line.style.width > 1)


def command_starts(data: bytes) -> list[int]:
    """Where ESC commands start: in our tickets every ESC byte does (QR data and lengths hold none)."""
    return [i for i, byte in enumerate(data) if byte == 0x1B]


@pytest.fixture
def emulator(tmp_path):
    em = Emulator(out_dir=str(tmp_path / "out"))
    yield em
    em.close()


@pytest.fixture
def pty_link(emulator, tmp_path):
    link = PtyLink(emulator, str(tmp_path / "printer"))
    yield link
    link.close()


@pytest.fixture
def port(pty_link):
    with serial.Serial(pty_link.link_path, 19200, timeout=TIMEOUT) as p:
        yield p


@pytest.fixture
def tcp_link(emulator):
    link = TcpLink(emulator)
    yield link
    link.close()


def ask(port, query: bytes) -> bytes:
    """Send status queries and read one answer byte per query."""
    port.write(query)
    return port.read(len(query) // 3)


# --- pty ----------------------------------------------------------------------------------

def test_pty_link_is_a_symlink_to_a_pty(pty_link):
    assert os.path.islink(pty_link.link_path)
    assert os.readlink(pty_link.link_path) == pty_link.device and pty_link.device.startswith("/dev/pts/")


def test_a_kiosk_ticket_prints_through_the_pty(emulator, port, tmp_path):
    data = ticket(12)
    port.write(data)
    document, = emulator.wait_for_documents(1, TIMEOUT)
    assert document.complete and big_label(document) == "A-012" and document.qr_payloads == [PAYLOAD]
    assert document.receipt == decode(data)[0] and document.byte_count == len(data)
    assert [os.path.basename(f) for f in document.files] == ["doc-0001.txt", "doc-0001.png"]
    assert (tmp_path / "out" / "doc-0001.txt").read_text().startswith("    Disdukcapil Kota Serang\n")


def test_status_answers_over_the_pty_follow_the_table(emulator, port):
    states = [
        (lambda: None, "12 12 12 12"),
        (lambda: emulator.set_paper("near_end"), "12 12 12 1e"),
        (lambda: emulator.set_paper("out"), "1a 32 12 7e"),
        (lambda: (emulator.set_paper("ok"), emulator.open_cover()), "1a 16 12 12"),
        (lambda: (emulator.close_cover(), emulator.set_offline(True)), "1a 12 12 12"),
        (lambda: (emulator.set_offline(False), emulator.set_error(True)), "1a 52 32 12"),
        (lambda: emulator.set_error(False), "12 12 12 12"),
    ]
    for change, expected in states:
        change()
        assert ask(port, eot(1) + eot(2) + eot(3) + eot(4)).hex(" ") == expected


def test_queries_interleaved_with_print_data(emulator, port):
    data = ticket(3)
    a, b = command_starts(data)[4], command_starts(data)[8]  # a query inside a command would be its parameter
    port.write(data[:a] + eot(1) + data[a:b] + eot(4) + data[b:] + eot(2))
    assert port.read(3) == b"\x12\x12\x12"
    document, = emulator.wait_for_documents(1, TIMEOUT)
    assert document.receipt == decode(data)[0] and document.byte_count == len(data)


def test_dle_eot_inside_a_qr_block_is_not_a_query(emulator, port):
    def block(body):
        return b"\x1d(k" + len(body).to_bytes(2, "little") + body

    qr_data = b"A\x10\x04\x01B"  # a status query's bytes, as QR data
    emulator.set_paper("near_end")  # the real query below answers 0x1e; a wrong one would answer 0x12 first
    port.write(b"\x1b@" + block(b"1P0" + qr_data) + block(b"1Q0") + b"\x1dV\x00" + eot(4))
    assert port.read(1) == b"\x1e"
    assert [c.args for c in emulator.realtime] == [b"\x04"]
    assert emulator.wait_for_documents(1, TIMEOUT)[0].receipt.items[0].data == qr_data


def test_paper_out_mid_ticket_interrupts_it(emulator, port, tmp_path):
    data = ticket(5)
    emulator.paper_out_after(200)
    port.write(data)
    document, = emulator.wait_for_documents(1, TIMEOUT)
    assert document.interrupted and document.ended_by == "paper out" and document.byte_count == 200
    assert big_label(document) == "A-005" and document.qr_payloads == []
    assert ask(port, eot(1) + eot(2) + eot(4)) == b"\x1a\x32\x7e"
    assert emulator.dropped_bytes == len(data) - 200
    assert sorted(os.listdir(tmp_path / "out")) == ["doc-0001-interrupted.png", "doc-0001-interrupted.txt"]


def test_cover_open_blocks_printing_until_closed(emulator, port):
    emulator.open_cover()
    port.write(ticket(1))
    assert ask(port, eot(2)) == b"\x16"  # answered, so the whole ticket has been taken in
    assert emulator.state.documents == 0 and emulator.dropped_bytes == len(ticket(1))
    emulator.close_cover()
    port.write(ticket(2))
    document, = emulator.wait_for_documents(1, TIMEOUT)
    assert document.complete and big_label(document) == "A-002"


def test_silent_mode_never_answers(emulator, port):
    emulator.status_mode("silent")
    port.write(eot(1))
    emulator.wait_for_received(3, TIMEOUT)
    emulator.status_mode("normal")
    emulator.set_paper("near_end")
    assert ask(port, eot(4)) == b"\x1e"  # the first byte back answers the second query


def test_garbage_mode_answers_with_bytes_that_are_not_status_bytes(emulator, port):
    emulator.status_mode("garbage")
    answers = ask(port, eot(1) * 8)
    assert len(answers) == 8 and all(byte & 0x80 for byte in answers)  # bit 7 is always clear in a status byte


def test_pacing_makes_link_time_real(emulator, tmp_path):
    link = PtyLink(emulator, str(tmp_path / "paced"), baud=19200)
    body = b"\x1b@" + b"".join(b"line %04d .................\n" % i for i in range(200))
    data = body[:2000 - 3] + b"\x1dV\x00"
    assert len(data) == 2000
    wire_time = 2000 * 10 / 19200
    try:
        with serial.Serial(link.link_path, 19200, timeout=TIMEOUT) as p:
            sent_at = time.monotonic()
            p.write(data + eot(1))
            assert p.read(1) == b"\x12"
            round_trip = time.monotonic() - sent_at
        document, = emulator.wait_for_documents(1, TIMEOUT)
    finally:
        link.close()
    took = document.last_byte_at - document.first_byte_at
    assert wire_time - 1e-6 <= took <= 1.1 * wire_time, took  # the pacing's own float sums may land 1e-10 short
    assert (2000 + 3 + 1) * 10 / 19200 <= round_trip <= 1.1 * wire_time + 0.05, round_trip


def test_unplug_fails_the_open_port_and_replug_serves_a_new_one(emulator, pty_link):
    old = serial.Serial(pty_link.link_path, 19200, timeout=TIMEOUT)
    assert ask(old, eot(1)) == b"\x12"
    pty_link.unplug()
    assert not os.path.lexists(pty_link.link_path) and not pty_link.plugged
    with pytest.raises(serial.SerialException, match="write failed.*Input/output error"):
        old.write(b"x")
    with pytest.raises(serial.SerialException, match="returned no data"):
        old.read(1)
    with pytest.raises(serial.SerialException, match="No such file"):
        serial.Serial(pty_link.link_path, 19200)
    old.close()
    pty_link.replug()
    with serial.Serial(pty_link.link_path, 19200, timeout=TIMEOUT) as new:
        assert ask(new, eot(1)) == b"\x12"
        new.write(ticket(9))
        assert emulator.wait_for_documents(1, TIMEOUT)[0].complete


def test_disconnect_mid_ticket(emulator, pty_link):
    with serial.Serial(pty_link.link_path, 19200, timeout=TIMEOUT) as p:
        pty_link.disconnect_after(100)
        p.write(ticket(4))
        assert pty_link.wait_unplugged(TIMEOUT)
        with pytest.raises(OSError):
            p.write(b"more")
    document, = emulator.wait_for_documents(1, TIMEOUT)
    assert document.interrupted and document.ended_by == "unplugged" and document.byte_count == 100
    pty_link.replug()
    with serial.Serial(pty_link.link_path, 19200, timeout=TIMEOUT) as p:
        p.write(ticket(6))
        assert big_label(emulator.wait_for_documents(2, TIMEOUT)[1]) == "A-006"


def test_a_stale_symlink_is_replaced_but_a_real_file_is_not(emulator, tmp_path):
    stale = tmp_path / "stale"
    os.symlink("/dev/pts/does-not-exist", stale)
    with PtyLink(emulator, str(stale)) as link:
        assert os.readlink(stale) == link.device
    regular = tmp_path / "regular"
    regular.write_text("keep me")
    with pytest.raises(OSError, match=r"exists and is not a symlink; remove it or choose another path"):
        PtyLink(emulator, str(regular))
    assert regular.read_text() == "keep me"


def test_links_and_emulator_stop_all_their_threads(tmp_path):
    before = set(threading.enumerate())
    emulator = Emulator()
    links = [PtyLink(emulator, str(tmp_path / "a"), baud=9600), TcpLink(emulator)]
    links[0].unplug()
    links[0].replug()
    assert len(set(threading.enumerate()) - before) == 3  # output, pty and tcp threads
    for link in links:
        link.close()
        link.close()  # idempotent
    emulator.close()
    emulator.close()
    assert set(threading.enumerate()) - before == set()


# --- TCP ----------------------------------------------------------------------------------

def connect(link) -> socket.socket:
    return socket.create_connection(("127.0.0.1", link.port), timeout=TIMEOUT)


def recv_exactly(sock, n: int) -> bytes:
    data = b""
    while len(data) < n and (chunk := sock.recv(n - len(data))):
        data += chunk
    return data


def test_a_ticket_prints_over_tcp_with_status_answers(emulator, tcp_link):
    assert tcp_link.port > 0
    data = ticket(21)
    with connect(tcp_link) as sock:
        at = command_starts(data)[6]
        sock.sendall(data[:at] + eot(1) + data[at:] + eot(4))
        assert recv_exactly(sock, 2) == b"\x12\x12"
    document, = emulator.wait_for_documents(1, TIMEOUT)
    assert big_label(document) == "A-021" and document.qr_payloads == [PAYLOAD] and document.complete


def test_one_tcp_client_at_a_time(emulator, tcp_link):
    with connect(tcp_link) as first, connect(tcp_link) as second:
        second.sendall(eot(1))  # connected in the backlog; nobody reads it yet
        first.sendall(eot(4))
        assert first.recv(1) == b"\x12"
        assert len(emulator.realtime) == 1
        first.close()
        assert second.recv(1) == b"\x12"
        assert len(emulator.realtime) == 2


def test_tcp_unplug_resets_and_replug_listens_on_the_same_port(emulator, tcp_link):
    port = tcp_link.port
    sock = connect(tcp_link)
    sock.sendall(ticket(1)[:80])
    emulator.wait_for_received(80, TIMEOUT)
    tcp_link.unplug()
    with pytest.raises(ConnectionResetError):
        sock.recv(1)
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(tcp_link)
    assert emulator.wait_for_documents(1, TIMEOUT)[0].ended_by == "unplugged"
    tcp_link.replug()
    assert tcp_link.port == port
    with connect(tcp_link) as sock:
        sock.sendall(ticket(2) + eot(1))
        assert sock.recv(1) == b"\x12"
    assert big_label(emulator.wait_for_documents(2, TIMEOUT)[1]) == "A-002"


def test_tcp_client_hanging_up_mid_ticket_ends_the_document_uncut(emulator, tcp_link):
    with connect(tcp_link) as sock:
        sock.sendall(ticket(3)[:200])
    document, = emulator.wait_for_documents(1, TIMEOUT)
    assert (document.complete, document.interrupted, document.ended_by) == (False, False, "connection closed")
    assert document.byte_count == 200


def test_tcp_disconnect_after(emulator, tcp_link):
    tcp_link.disconnect_after(50)
    with connect(tcp_link) as sock:
        sock.sendall(ticket(3))
        assert tcp_link.wait_unplugged(TIMEOUT)
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    assert emulator.wait_for_documents(1, TIMEOUT)[0].byte_count == 50


def test_tcp_pacing(emulator):
    with TcpLink(emulator, bytes_per_s=4000) as link, connect(link) as sock:
        sent_at = time.monotonic()
        sock.sendall(b"\x1b@" + b"x" * 395 + b"\n" + eot(1))  # 400 bytes: 0.1 s at 4000 bytes/s
        assert sock.recv(1) == b"\x12"
        assert 0.1 <= time.monotonic() - sent_at <= 0.2


def test_tcp_link_refuses_anything_but_loopback(emulator):
    with pytest.raises(ValueError, match=r"host '0.0.0.0' is not an IPv4 loopback address"):
        TcpLink(emulator, host="0.0.0.0")


# --- saving never stops the printer ------------------------------------------------------------

ANY_BYTES = bytes(range(0x80, 0x100))


def test_any_bytes_in_any_code_page_are_saved_and_printing_goes_on(emulator, port, tmp_path):
    odd = b"\x1b@" + b"".join(b"\x1bt" + bytes([n]) + ANY_BYTES + b"\n" for n in (0, 17, 2, 99)) + b"\x1dV\x00"
    port.write(odd + ticket(13))
    first, second = emulator.wait_for_documents(2, TIMEOUT)
    text = (tmp_path / "out" / "doc-0001.txt").read_text(encoding="utf-8")
    assert "\u2591" in text and "\u0416" in text  # CP437 shade and CP866 Zhe, neither in Latin-1
    assert len(first.files) == len(second.files) == 2 and all(os.path.exists(f) for f in first.files)
    assert big_label(second) == "A-013" and emulator.save_error is None
    assert ask(port, eot(1)) == b"\x12"


def test_a_document_that_cannot_be_saved_is_a_printer_error(emulator, port, tmp_path):
    (tmp_path / "out" / "doc-0001.txt").mkdir()  # in the way of the first document's text
    port.write(ticket())
    [document] = emulator.wait_for_documents(1, TIMEOUT)
    assert document.files == () and "doc-0001.txt" in emulator.save_error
    assert ask(port, eot(1) + eot(2)) == b"\x1a\x52"  # offline, because of an error: the kiosk says "error"
    emulator.set_error(False)  # the operator's "error off", once the disk is fixed
    assert emulator.save_error is None and ask(port, eot(1)) == b"\x12"
