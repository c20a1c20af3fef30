"""Printer backends on their own: status decoding, opening errors, timeouts. The emulator tests
(test_printing_links.py) drive them end to end."""

import socket
import threading

import pytest

from kiosk.printer import PrinterStatus, make_printer
from kiosk.printer import escpos_status as dle
from kiosk.printer.errors import PrinterError, UnknownBackend


@pytest.mark.parametrize("answers, expected", [
    ((0x12, None, 0x12), PrinterStatus.OK),
    ((0x12, None, 0x1E), PrinterStatus.PAPER_NEAR_END),
    ((0x1A, 0x32, 0x7E), PrinterStatus.PAPER_OUT),      # Epson's documented out-of-paper answers
    ((0x12, None, 0x72), PrinterStatus.PAPER_OUT),      # roll empty but still "online"
    ((0x1A, 0x16, 0x12), PrinterStatus.COVER_OPEN),
    ((0x1A, 0x52, 0x12), PrinterStatus.ERROR),
    ((0x1A, 0x12, 0x12), PrinterStatus.OFFLINE),
])
def test_dle_eot_answers(answers, expected):
    assert dle.interpret(*answers) is expected


@pytest.mark.parametrize("byte, valid", [(0x12, True), (0x7E, True), (0x1A, True), (0xFF, False),
                                         (0x00, False), (0x13, False), (0x92, False)])
def test_status_byte_pattern(byte, valid):
    assert dle.is_status_byte(byte) is valid


def test_unknown_backend_lists_choices():
    with pytest.raises(UnknownBackend, match="printer backend 'laser' is unknown; use one of: dummy, file"):
        make_printer("laser")


def test_serial_port_missing_names_it(tmp_path):
    printer = make_printer("serial", port=str(tmp_path / "ttyNOPE"))
    with pytest.raises(PrinterError, match="cannot open serial printer at .*ttyNOPE"):
        printer.open()
    assert printer.status() is PrinterStatus.OFFLINE
    printer.close()
    printer.close()  # idempotent


def test_serial_bad_flow_control():
    with pytest.raises(PrinterError, match="flow_control 'cts' is unknown"):
        make_printer("serial", port="/dev/null", flow_control="cts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_refused_names_address():
    port = free_port()
    printer = make_printer("tcp", host="127.0.0.1", port=port, connect_timeout_ms=500)
    with pytest.raises(PrinterError, match=f"cannot connect to printer at 127.0.0.1:{port}"):
        printer.open()


def test_tcp_send_before_open_is_a_programmer_error():
    printer = make_printer("tcp", host="127.0.0.1")
    with pytest.raises(PrinterError, match="not open; call open"):
        printer.send(b"x")


def test_usb_without_device_is_a_clear_error():
    printer = make_printer("usb", vendor_id=0x04B8, product_id=0x0E15)
    with pytest.raises(PrinterError, match="pyusb|not found"):
        printer.open()
    assert not printer.is_open


def test_tcp_printer_that_never_answers_status_is_unknown_not_a_hang():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        printer = make_printer("tcp", host="127.0.0.1", port=server.getsockname()[1], status_timeout_ms=100)
        printer.open()
        conn, _ = server.accept()
        assert printer.status() is PrinterStatus.UNKNOWN
        assert conn.recv(3) == b"\x10\x04\x01"  # it did ask
        answer = threading.Thread(target=lambda: (conn.recv(3), conn.sendall(b"\xff")))  # garbage
        answer.start()
        assert printer.status() is PrinterStatus.UNKNOWN and printer.garbage_answers == 1
        answer.join()
        conn.close()  # the printer goes away
        assert printer.status() is PrinterStatus.OFFLINE and not printer.is_open
