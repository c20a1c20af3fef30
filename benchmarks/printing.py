"""Printing on a real serial link: press to the last byte at the printer, raster versus ours, reload.

The kiosk prints through its own ``serial`` backend (pyserial, DLE EOT
status queries and all) to the ESC/POS emulator behind a real
pseudo-terminal paced at 19,200 baud (10 bits a byte, both directions), all
in this process, so the press and the emulator's byte times share one
``time.monotonic()`` clock. Three measurements:

1. Button press to the last byte of the ticket accepted by the emulator,
   against the link's floor for that ticket (its bytes x 10 / 19,200 s).
2. The same ticket as a raster image (our bytes decoded, drawn with
   ``render_png``, sent with python-escpos ``image()``) on the same link;
   and, for information, ``printer.qr_code = "image"`` (only the QR as a
   raster).
3. Paper runs out mid-ticket, the operator reloads: reload to the last
   byte of the reprinted ticket, printed by the kiosk's own worker thread
   when its idle poll notices the printer is back.

    python benchmarks/printing.py            # 30 presses, 3 QR-image presses, 10 reloads (~45 s)
    python benchmarks/printing.py --quick    # 5 presses, 1 QR-image press, 3 reloads (~25 s: the
                                             # raster ticket alone is 20 s on the wire)
"""

import contextlib
import datetime as dt
import io
import logging
import os
import random
import sys
import tempfile
import time

from _common import SERVICES, arguments, config_text, machine, ms, percentile, say, table, verdict
from escpos_emulator import Emulator, PtyLink
from support.clock import FakeSystemClock

from common.log import setup_logging
from kiosk import app as kapp
from kiosk import config as kconfig
from kiosk.app import build_kiosk
from kiosk.layout import DOTS
from kiosk.printer import escpos_status as dle
from kiosk.printer.decode import decode, render_png
from kiosk.printer.serialport import SerialPrinter
from kiosk.seam import PrinterStatus
from kiosk.signing import verify_payload

BAUD = 19200
BITS_PER_BYTE = 10
TARGET_RATIO = 1.15  # press -> last byte, over the link floor of the ticket
TARGET_RASTER = 5.0  # the raster ticket takes at least this many times longer than ours
MONDAY_0930 = dt.datetime(2026, 11, 23, 9, 30)
WARMUP_PRESSES = 3
PAPER_OUT_AFTER = 120  # print bytes into the ticket: past the header, before the QR
STATUS_TIMEOUT_MS = 300
TIMEOUT_S = 10.0


def floor_s(n_bytes: int) -> float:
    """Time the line needs for ``n_bytes`` at BAUD, 8N1."""
    return n_bytes * BITS_PER_BYTE / BAUD


def secs(seconds: float) -> str:
    return ms(seconds) if seconds < 1 else f"{seconds:.2f} s"


def serial_config(data_dir: str, port: str, qr_code: str = "native") -> kconfig.Config:
    """The benchmarks' usual office, printing on the serial port ``port`` at BAUD."""
    text = config_text(data_dir)
    file_printer = f'backend = "file"\npath = "{data_dir}/printer.out"\ncreate = true\n'
    assert file_printer in text, "config_text() changed; update serial_config()"
    text = text.replace(file_printer, f'backend = "serial"\nserial_port = "{port}"\nbaud_rate = {BAUD}\n'
                                      f'status_timeout_ms = {STATUS_TIMEOUT_MS}\nqr_code = "{qr_code}"\n')
    return kconfig.loads(text, source="benchmark")


class Probe:
    """Timestamps inside one kiosk: what its printer writes and where a press spends its time.

    The kiosk is not changed: the probe wraps methods on its instances only.
    """

    def __init__(self, kiosk):
        self.kiosk = kiosk
        self.reset()
        printer, ledger = kiosk.printer, kiosk.ledger
        self._wrap(printer, "_write", self._on_write)
        self._wrap(printer, "status", self._timed("status"))
        self._wrap(ledger, "issue_ticket", self._timed("issue"))
        self._wrap(kiosk, "render", self._timed("render"))
        self._wrap(ledger, "owed_prints", self._timed("owed"))  # tickets owed from a failed print

    def reset(self) -> None:
        self.writes = []  # (start, end, n_bytes, is_status_query)
        self.printed = b""  # the last print write: the ticket's bytes
        self.spans = {"status": [], "issue": [], "render": [], "owed": []}  # (start, end)

    @staticmethod
    def _wrap(obj, name, make):
        real = getattr(obj, name)
        setattr(obj, name, make(real))

    def _on_write(self, real):
        def write(data):
            t0 = time.monotonic()
            try:
                return real(data)
            finally:
                is_query = len(data) == 3 and bytes(data[:2]) == dle.DLE_EOT
                self.writes.append((t0, time.monotonic(), len(data), is_query))
                if not is_query:
                    self.printed = bytes(data)
        return write

    def _timed(self, key):
        def make(real):
            def timed(*args, **kwargs):
                t0 = time.monotonic()
                try:
                    return real(*args, **kwargs)
                finally:
                    self.spans[key].append((t0, time.monotonic()))
            return timed
        return make

    def ticket_write(self):
        """(start, n_bytes) of the one print write of the press."""
        [(start, _, n, _)] = [w for w in self.writes if not w[3]]
        return start, n

    def spent(self, key, before: float | None = None) -> float:
        return sum(end - start for start, end in self.spans[key] if before is None or end <= before)


def check_document(kiosk, document, outcome_ticket=None, reprint: bool = False):
    """The emulator printed a whole ticket, and it is the one the ledger says.

    A QR printed as an image (qr_code = "image", or "auto" on a profile without GS ( k) is a
    raster to the emulator, not a payload: then only the ticket's label is checked, in the text.
    """
    if not kiosk.paper.native_qr:
        label = outcome_ticket.label if outcome_ticket else ""
        if not document.complete or label.replace("-", "") not in document.text(32).replace(" ", "").replace("-", ""):
            raise SystemExit(f"document {document.number} is not ticket {label}: ended by {document.ended_by}, "
                             f"{document.byte_count} bytes:\n{document.text(32)}")
        return None
    if not document.complete or len(document.qr_payloads) != 1:
        raise SystemExit(f"document {document.number} is not a whole ticket: ended by {document.ended_by}, "
                         f"{document.byte_count} bytes, QR {document.qr_payloads}")
    if reprint and "CETAK ULANG" not in document.text(32):
        raise SystemExit(f"document {document.number} is not marked as a reprint:\n{document.text(32)}")
    fields = verify_payload(kiosk._key, document.qr_payloads[0])
    if outcome_ticket is not None and (fields["service"], fields["number"]) != (
            outcome_ticket.service, outcome_ticket.number):
        raise SystemExit(f"document {document.number} holds {fields}, the press issued {outcome_ticket.label}")
    return fields


# ---------------------------------------------------------------- 1. press -> last byte

def run_presses(cfg, emulator, presses: int, warmup: int) -> dict:
    """Call handle_press on the caller's thread (no worker), as issuing.py does; time each ticket."""
    kiosk = build_kiosk(cfg, system_clock=FakeSystemClock(MONDAY_0930.replace(tzinfo=cfg.tz)))
    probe = Probe(kiosk)
    kiosk.printer.open()
    kiosk.tick()
    codes = [code for code, *_ in SERVICES]
    rows = []
    try:
        for i in range(warmup + presses):
            probe.reset()
            before = len(emulator.documents)
            t_press = time.monotonic()
            outcome = kiosk.handle_press(codes[i % len(codes)])
            t_done = time.monotonic()
            if outcome.kind != "ticket" or not outcome.printed:
                raise SystemExit(f"press {i} did not print a ticket: {outcome}")
            document = emulator.wait_for_documents(before + 1, TIMEOUT_S)[before]
            check_document(kiosk, document, outcome.ticket)
            t_send, ticket_bytes = probe.ticket_write()
            queries_before = [w for w in probe.writes if w[3] and w[0] < t_send]
            queries_after = [w for w in probe.writes if w[3] and w[0] > t_send]
            rows.append({
                "press_to_last": document.last_byte_at - t_press,
                "floor": floor_s(document.byte_count),
                "doc_bytes": document.byte_count,
                "ticket_bytes": ticket_bytes,
                "query_bytes_before": sum(w[2] for w in queries_before),
                "query_bytes_after": sum(w[2] for w in queries_after),
                "written": sum(w[2] for w in probe.writes),
                # where the time before the ticket's write goes
                "status_before": probe.spent("status", t_send),
                "owed": probe.spent("owed", t_send),
                "issue": probe.spent("issue", t_send),
                "render": probe.spent("render", t_send),
                "press_to_write": t_send - t_press,
                "write_to_first": document.first_byte_at - t_send,
                "write_to_last": document.last_byte_at - t_send,
                "last_to_return": t_done - document.last_byte_at,
                "press_total": t_done - t_press,
                "ticket": outcome.ticket,
                "data": probe.printed,
            })
            rows[-1]["other"] = rows[-1]["press_to_write"] - sum(
                rows[-1][k] for k in ("status_before", "owed", "issue", "render"))
    finally:
        kiosk.stop()  # closes the serial port, so the next phase can open it (it is opened exclusive)
        kiosk.ledger.close()
    return {"rows": rows[warmup:], "first": rows[0]}


# ---------------------------------------------------------------- 2. raster

def raster_job(ticket_bytes: bytes, png_path: str) -> tuple[bytes, float]:
    """Our ticket as one picture, as a kiosk that prints images would send it: ESC @, GS v 0, cut."""
    from escpos.printer.dummy import Dummy

    t0 = time.perf_counter()
    [receipt] = [r for r in decode(ticket_bytes) if r.items]
    render_png(receipt, png_path, width_px=DOTS[58])
    p = Dummy()
    p.hw("INIT")
    # The default profile has no media width, so image() prints a notice on stdout; keep it out of the table.
    with contextlib.redirect_stdout(io.StringIO()):
        p.image(png_path)
    p.cut()
    return p.output, time.perf_counter() - t0


def send_raster(link_path: str, emulator, job: bytes) -> dict:
    """Send ``job`` with the kiosk's serial backend; its write blocks while the line drains."""
    printer = SerialPrinter(link_path, BAUD, write_timeout_ms=int((floor_s(len(job)) + 30) * 1000),
                            status_timeout_ms=STATUS_TIMEOUT_MS)
    printer.open()
    try:
        before_docs, before_bytes = len(emulator.documents), emulator.received_bytes
        t0 = time.monotonic()
        printer.send(job)
        t_written = time.monotonic()
        emulator.wait_for_received(before_bytes + len(job), floor_s(len(job)) + TIMEOUT_S)
        t_received = time.monotonic()
        document = emulator.wait_for_documents(before_docs + 1, TIMEOUT_S)[before_docs]
        status = printer.status()
    finally:
        printer.close()
    if not document.complete or status is not PrinterStatus.OK:
        raise SystemExit(f"raster ticket: document ended by {document.ended_by}, printer {status.value}")
    return {"bytes": len(job), "doc_bytes": document.byte_count, "first_to_last": document.last_byte_at - t0,
            "write_blocked": t_written - t0, "received_seen": t_received - t0}


# ---------------------------------------------------------------- 3. reload -> reprint

def run_reloads(cfg, emulator, reloads: int, rng: random.Random) -> dict:
    """The kiosk's worker thread (kiosk.start(), no button source) serves presses and notices reloads."""
    kiosk = build_kiosk(cfg, buttons=None, system_clock=FakeSystemClock(MONDAY_0930.replace(tzinfo=cfg.tz)))
    kiosk.start()
    rows = []
    try:
        for i in range(reloads):
            code = SERVICES[i % len(SERVICES)][0]
            before = len(emulator.documents)
            emulator.paper_out_after(PAPER_OUT_AFTER)
            kiosk.submit(code)  # a press, through the worker's queue as a button would
            kiosk.drain(TIMEOUT_S)
            cut_short = emulator.wait_for_documents(before + 1, TIMEOUT_S)[before]
            if not cut_short.interrupted or kiosk.printer_status is not PrinterStatus.PAPER_OUT:
                raise SystemExit(f"reload {i}: the ticket was not cut short by paper out "
                                 f"({cut_short.ended_by}, kiosk sees {kiosk.printer_status.value})")
            time.sleep(rng.uniform(0, kapp.FAULT_POLL_S))  # the operator comes at any moment of the poll
            t0 = time.monotonic()
            emulator.set_paper("ok")  # the operator reloads
            reprint = emulator.wait_for_documents(before + 2, TIMEOUT_S)[before + 1]
            check_document(kiosk, reprint, reprint=True)
            kiosk.drain(TIMEOUT_S)  # let the worker finish with the reprint (status after, ledger)
            rows.append({"reload_to_last": reprint.last_byte_at - t0, "reload_to_first": reprint.first_byte_at - t0,
                         "wire": reprint.last_byte_at - reprint.first_byte_at,
                         "floor": floor_s(reprint.byte_count), "bytes": reprint.byte_count})
    finally:
        kiosk.stop()
    try:
        statuses = [kiosk.ledger.find(code, MONDAY_0930.date(), n).status
                    for code, *_ in SERVICES for n in range(1, kiosk.ledger.taken(code, MONDAY_0930.date()) + 1)]
    finally:
        kiosk.ledger.close()
    if statuses.count("reprinted") < reloads:
        raise SystemExit(f"the ledger has {statuses.count('reprinted')} reprinted tickets after {reloads} reloads")
    return {"rows": rows}


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = arguments(__doc__, "a smoke run (5 presses, 1 QR-image press, 3 reloads)")
    args = parser.parse_args(argv)
    presses = 5 if args.quick else 30
    image_presses = 1 if args.quick else 3
    reloads = 3 if args.quick else 10
    rng = random.Random(2026)

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="antrean-bench-printing-"))
        data_dir = os.path.join(tmp, "data")
        setup_logging("info", "json", stream=stack.enter_context(open(os.path.join(tmp, "kiosk.log"), "w")))
        stack.callback(lambda: logging.getLogger().handlers.clear())
        emulator = stack.enter_context(Emulator())  # no out_dir: no PNG drawn per document
        link = stack.enter_context(PtyLink(emulator, os.path.join(tmp, "ttyPRINTER"), baud=BAUD))
        native = serial_config(data_dir, link.link_path)

        say(f"1. {presses} presses (+{WARMUP_PRESSES} warm-up) through {link} ...")
        ours = run_presses(native, emulator, presses, WARMUP_PRESSES)
        last = ours["rows"][-1]

        say("2. the same ticket as a raster image ...")
        job, raster_prep_s = raster_job(last["data"], os.path.join(tmp, "ticket.png"))  # the last press's bytes
        say(f"   {len(job):,} bytes, ~{floor_s(len(job)):.0f} s on the wire ...")
        raster = send_raster(link.link_path, emulator, job)

        say(f"   printer.qr_code = \"image\": {image_presses} press(es) ...")
        notices = io.StringIO()
        with contextlib.redirect_stdout(notices):  # python-escpos prints a notice per raster QR (see below)
            qr_image = run_presses(serial_config(data_dir, link.link_path, qr_code="image"), emulator,
                                   image_presses, warmup=0)
        escpos_notices = notices.getvalue().count("media.width.pixel")

        say(f"3. {reloads} paper-out-mid-ticket reloads, worker thread polling ...")
        reload = run_reloads(native, emulator, reloads, rng)

    rows = ours["rows"]
    ratio = [r["press_to_last"] / r["floor"] for r in rows]
    p99_note = f" (with {len(rows)} samples p99 is the max)" if len(rows) < 100 else ""
    print("# Printing on a 19,200-baud serial link (real pty, kiosk serial backend, ESC/POS emulator)\n")
    print(f"Machine: {machine()}")
    print(f"Config: 58 mm, native QR, 4 services, status_timeout_ms {STATUS_TIMEOUT_MS}, pty paced at {BAUD} baud "
          f"(10 bits a byte, both directions); kiosk and emulator in one process, one monotonic clock; "
          f"handle_press called directly (no worker thread), {presses} measured presses after "
          f"{WARMUP_PRESSES} warm-up presses{p99_note}\n")
    print("## 1. Press to the last ticket byte accepted by the printer\n")
    doc_bytes = sorted({r["doc_bytes"] for r in rows})
    print(table(["presses", "ticket bytes", "link floor", "press -> last byte p50", "p99", "max",
                 "/ floor p50", "p99", "max", "target", "result"], [[
        len(rows), f"{doc_bytes[0]}-{doc_bytes[-1]}" if len(doc_bytes) > 1 else doc_bytes[0],
        ms(percentile([r["floor"] for r in rows], 50)),
        ms(percentile([r["press_to_last"] for r in rows], 50)), ms(percentile([r["press_to_last"] for r in rows], 99)),
        ms(max(r["press_to_last"] for r in rows)),
        f"{percentile(ratio, 50):.3f}x", f"{percentile(ratio, 99):.3f}x", f"{max(ratio):.3f}x",
        f"p99 <= {TARGET_RATIO}x", verdict(percentile(ratio, 99) <= TARGET_RATIO)]]))

    print("\n### Bytes on the wire per press (last measured press)\n")
    print(table(["what", "bytes", "line time"], [
        ["ticket as the emulator counted it (print bytes, `Document.byte_count`)", last["doc_bytes"],
         ms(floor_s(last["doc_bytes"]))],
        ["ticket as the kiosk wrote it (`render()` output, one write)", last["ticket_bytes"],
         ms(floor_s(last["ticket_bytes"]))],
        ["DLE EOT queries before the ticket (1 answer byte back each)", last["query_bytes_before"],
         ms(floor_s(last["query_bytes_before"]))],
        ["DLE EOT queries after the ticket (not before the last byte)", last["query_bytes_after"],
         ms(floor_s(last["query_bytes_after"]))],
        ["everything the kiosk wrote in the press", last["written"], ms(floor_s(last["written"]))],
    ]))
    differ = sum(r["doc_bytes"] != r["ticket_bytes"] for r in rows)
    print(f"\nPresses whose ticket the emulator counted differently from what the kiosk wrote: {differ} of "
          f"{len(rows)}. The DLE EOT queries are real-time commands, not print bytes: the floor is the "
          f"ticket's alone, so the status check before it counts as overhead.")

    print("\n### Where the time goes (same presses)\n")
    parts = [("status check before the ticket (DLE EOT round trips)", "status_before"),
             ("owed-reprint query (ledger)", "owed"),
             ("issue_ticket (SQL + durable COMMIT)", "issue"),
             ("render (ESC/POS bytes)", "render"),
             ("other (guard, LEDs, log line, clock)", "other"),
             ("= press -> ticket write", "press_to_write"),
             ("ticket write -> first byte at the printer", "write_to_first"),
             ("ticket write -> last byte at the printer", "write_to_last"),
             ("link floor of the ticket", "floor"),
             ("last byte -> handle_press returns (status after, mark_printed)", "last_to_return"),
             ("whole handle_press", "press_total")]
    print(table(["part", "p50", "p99", "max"], [
        [name, ms(percentile([r[k] for r in rows], 50)), ms(percentile([r[k] for r in rows], 99)),
         ms(max(r[k] for r in rows))] for name, k in parts]
        + [["first press after build (not in stats): press -> last byte", ms(ours["first"]["press_to_last"]),
            "", ""]]))
    wire_excess = [r["write_to_last"] - r["floor"] for r in rows]
    print(f"\nOverhead above the floor, p50: {ms(percentile([r['press_to_last'] - r['floor'] for r in rows], 50))}, "
          f"of which {ms(percentile([r['press_to_write'] for r in rows], 50))} before the ticket's write and "
          f"{ms(percentile(wire_excess, 50))} on the link beyond 10 bits a byte.")

    print("\n## 2. The same ticket as a raster image, same link\n")
    q = qr_image["rows"]
    ours_p50 = percentile([r["press_to_last"] for r in rows], 50)
    ours_wire = percentile([r["write_to_last"] for r in rows], 50)
    raster_ratio = raster["first_to_last"] / ours_p50
    print(table(["ticket", "bytes", "link floor", "first write -> last byte", "press -> last byte",
                 "vs ours (press -> last byte)", "target", "result"], [
        [f"ours, native QR (p50 of {len(rows)})", percentile([r["ticket_bytes"] for r in rows], 50),
         ms(percentile([r["floor"] for r in rows], 50)), ms(ours_wire), ms(ours_p50), "1x", "", ""],
        [f"printer.qr_code = \"image\" (p50 of {len(q)})", percentile([r["ticket_bytes"] for r in q], 50),
         secs(percentile([r["floor"] for r in q], 50)),
         secs(percentile([r["write_to_last"] for r in q], 50)), secs(percentile([r["press_to_last"] for r in q], 50)),
         f"{percentile([r['press_to_last'] for r in q], 50) / ours_p50:.1f}x", "(information)", ""],
        ["whole ticket as a raster (decode, render_png 384 px, escpos image(), cut)", f"{raster['bytes']:,}",
         secs(floor_s(raster["bytes"])), secs(raster["first_to_last"]), "-", f"{raster_ratio:.0f}x",
         f">= {TARGET_RASTER:.0f}x", verdict(raster_ratio >= TARGET_RASTER)],
    ]))
    print(f"\nThe raster ticket also needs {ms(raster_prep_s)} to draw and encode before its first byte (not in "
          f"the table). Its single write() blocked for {secs(raster['write_blocked'])}: the pty and the emulator "
          f"took about {(raster['bytes'] - raster['write_blocked'] * BAUD / BITS_PER_BYTE) / 1024:.0f} KiB at once, "
          f"the rest had to wait for the line. With the kiosk's default write_timeout_ms = 5000 its serial backend "
          f"would give up on this ticket. qr_code = \"image\" ticket: {q[-1]['doc_bytes']:,} print bytes, "
          f"press -> last byte / floor = {q[-1]['press_to_last'] / q[-1]['floor']:.3f}x; python-escpos printed "
          f"its \"media.width.pixel ... not set\" notice on stdout {escpos_notices} time(s) for "
          f"{len(q)} such ticket(s) (captured here, not shown).")

    print("\n## 3. Paper reload to the reprinted ticket (worker thread, no button source)\n")
    rl = reload["rows"]
    print(table(["reloads", "reload -> reprint first byte p50", "max", "reload -> reprint last byte p50", "max",
                 "reprint floor", f"bound: FAULT_POLL_S {kapp.FAULT_POLL_S:g} s + floor"], [[
        len(rl), ms(percentile([r["reload_to_first"] for r in rl], 50)), ms(max(r["reload_to_first"] for r in rl)),
        ms(percentile([r["reload_to_last"] for r in rl], 50)), ms(max(r["reload_to_last"] for r in rl)),
        ms(percentile([r["floor"] for r in rl], 50)),
        ms(kapp.FAULT_POLL_S + percentile([r["floor"] for r in rl], 50))]]))
    print(f"\nPaper runs out {PAPER_OUT_AFTER} print bytes into a press's ticket (it becomes print_failed and the "
          f"kiosk sees paper_out); after a random 0-{kapp.FAULT_POLL_S:g} s wait the emulator's paper is set to ok "
          f"(t0). While the printer is down the worker polls every FAULT_POLL_S = {kapp.FAULT_POLL_S:g} s "
          f"(IDLE_POLL_S = {kapp.IDLE_POLL_S:g} s when it is up), so the reprint starts up to one poll after t0 "
          f"(plus the DLE EOT round trips of the check and the render), then takes the ticket's wire time "
          f"({ms(percentile([r['wire'] for r in rl], 50))} p50 first -> last byte, "
          f"{percentile([r['bytes'] for r in rl], 50)} bytes with the CETAK ULANG banner).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
