"""Bytes of a typical ticket with the native QR, versus the same ticket as a raster image.

Ours: the ESC/POS bytes the kiosk sends for one ticket (text commands plus a
native ``GS ( k`` QR symbol the printer draws itself). The alternative: the
same ticket drawn as a picture (our bytes decoded with kiosk.printer.decode,
drawn with render_png at the paper's dot width) and sent with
python-escpos's ``image()`` (``GS v 0`` raster), as a kiosk that prints
its tickets as images would. Also the time to render our bytes.

    python benchmarks/ticket_size.py            # 500 timed renders per paper width
    python benchmarks/ticket_size.py --quick    # 50
"""

import contextlib
import datetime as dt
import io
import logging
import os
import sys
import tempfile
import time

from _common import (
    QUOTA,
    SERVICES,
    arguments,
    config_text,
    machine,
    ms,
    percentile,
    say,
    table,
    verdict,
)
from support.clock import FakeSystemClock

from kiosk import config as kconfig
from kiosk.app import build_kiosk
from kiosk.layout import DOTS
from kiosk.printer.decode import decode, render_png
from kiosk.printer.dummy import DummyPrinter
from kiosk.signing import verify_payload

TARGET_BYTES = 600
TYPICAL_NUMBER = 42  # a mid-morning ticket
MONDAY_0930 = dt.datetime(2026, 11, 23, 9, 30)
QR_COMMAND = b"\x1d(k"
QR_PRINT_LEN = 8  # GS ( k 03 00 31 51 30: the last QR command


def qr_bytes(data: bytes) -> int:
    start, last = data.find(QR_COMMAND), data.rfind(QR_COMMAND)
    return 0 if start < 0 else last + QR_PRINT_LEN - start


def measure_paper(tmp: str, paper: int, renders: int) -> dict:
    data_dir = os.path.join(tmp, f"paper{paper}")
    cfg = kconfig.loads(config_text(data_dir, paper=paper), source="benchmark")
    system = FakeSystemClock(MONDAY_0930.replace(tzinfo=cfg.tz))
    printer = DummyPrinter()
    kiosk = build_kiosk(cfg, printer=printer, system_clock=system)
    kiosk.printer.open()
    kiosk.tick()
    try:
        # A whole day: every service up to its quota. Ticket A-042 is the "typical" one.
        sizes, typical, typical_ticket = [], None, None
        for number in range(1, QUOTA + 1):
            for code, *_ in SERVICES:
                printer.clear()
                outcome = kiosk.handle_press(code)
                if outcome.kind != "ticket" or not outcome.printed:
                    raise SystemExit(f"press {code} gave {outcome}")
                sizes.append(len(printer.output))
                if code == "A" and number == TYPICAL_NUMBER:
                    typical, typical_ticket = bytes(printer.output), outcome.ticket

        [receipt] = decode(typical)
        assert receipt.cut and len(receipt.qr_payloads) == 1
        fields = verify_payload(kiosk._key, receipt.qr_payloads[0])
        assert (fields["service"], fields["number"]) == ("A", TYPICAL_NUMBER), fields

        times = []
        for _ in range(renders):
            t0 = time.perf_counter()
            kiosk.render(typical_ticket)
            times.append(time.perf_counter() - t0)
        assert kiosk.render(typical_ticket) == typical  # rendering is deterministic

        png = os.path.join(tmp, f"ticket-{paper}.png")
        raster_times, raster = [], None
        for _ in range(max(3, renders // 50)):
            t0 = time.perf_counter()
            render_png(decode(typical)[0], png, width_px=DOTS[paper])
            raster = raster_bytes(png)
            raster_times.append(time.perf_counter() - t0)
        from PIL import Image

        with Image.open(png) as img:
            png_size = img.size
    finally:
        kiosk.stop()
        kiosk.ledger.close()
    return {"paper": paper, "label": typical_ticket.label, "data": typical, "bytes": len(typical),
            "qr": qr_bytes(typical),
            "payload": receipt.qr_payloads[0], "day_max": max(sizes), "day_min": min(sizes),
            "tickets": len(sizes), "raster": raster, "png_size": png_size,
            "render_p50": percentile(times, 50), "render_p99": percentile(times, 99),
            "raster_p50": percentile(raster_times, 50), "renders": renders}


def raster_bytes(png_path: str) -> int:
    """What python-escpos sends for the picture: ``image()`` (GS v 0), high density."""
    from escpos.printer.dummy import Dummy

    p = Dummy()
    # The default profile has no media width, so image() prints a notice on stdout; keep it out of the table.
    with contextlib.redirect_stdout(io.StringIO()):
        p.image(png_path)
    return len(p.output)


def link_time(n_bytes: int, baud: int) -> str:
    seconds = n_bytes * 10 / baud  # 8N1: ten bits a byte
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def main(argv=None) -> int:
    parser = arguments(__doc__, "a fast smoke run (50 timed renders)")
    args = parser.parse_args(argv)
    renders = 50 if args.quick else 500
    # The kiosk's log lines (a burst alarm per service while issuing a whole day) are not the table.
    logging.getLogger().handlers[:] = [logging.NullHandler()]

    with tempfile.TemporaryDirectory(prefix="antrean-bench-ticket-") as tmp:
        results = []
        for paper in (58, 80):
            say(f"{paper} mm: issuing a day of tickets, {renders} timed renders ...")
            results.append(measure_paper(tmp, paper, renders))

    print("# Ticket size: native QR vs the same ticket as a raster image\n")
    print(f"Machine: {machine()}")
    r0 = results[0]
    print(f"Typical ticket: {r0['label']} of \"Perekaman e-KTP\", office name 52 chars, signed QR payload "
          f"{len(r0['payload'])} bytes ({r0['payload'][:24]}...)\n")
    rows = []
    for r in results:
        rows.append([f"{r['paper']} mm", f"{r['bytes']} B", f"{r['qr']} B", f"{r['day_min']}-{r['day_max']} B",
                     f"{r['raster']:,} B", f"{r['png_size'][0]}x{r['png_size'][1]}",
                     f"{r['raster'] / r['bytes']:.0f}x", f"<= {TARGET_BYTES} B",
                     verdict(r["day_max"] <= TARGET_BYTES)])
    print(table(["paper", "ours (native QR)", "of which QR", f"all {r0['tickets']} tickets of a day",
                 "raster via escpos image()", "image px", "raster / ours", "target", "result"], rows))

    print("\n## Time on the wire (serial 8N1; a USB printer is faster, but buffers are small)\n")
    rows = []
    for r in results:
        for baud in (9600, 115200):
            rows.append([f"{r['paper']} mm", f"{baud} baud", link_time(r["bytes"], baud),
                         link_time(r["raster"], baud)])
    print(table(["paper", "link", "ours", "raster"], rows))

    print("\n## Render time per ticket (ours: ticket -> ESC/POS bytes, in-process)\n")
    rows = [[f"{r['paper']} mm", r["renders"], ms(r["render_p50"]), ms(r["render_p99"]),
             ms(r["raster_p50"])] for r in results]
    print(table(["paper", "renders", "ours p50", "ours p99", "raster path p50 (decode + PNG + image())"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
