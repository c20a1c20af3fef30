"""Printer-profile follow-ups of issue 12: the sim printer's width and the printing benchmark's QR check
both come from the profile the layout resolves, not from the paper width or the configured word alone."""

import sys
from pathlib import Path

import pytest
from escpos_emulator import Emulator
from PIL import Image
from support.config import file_printer, load, process_config

from kiosk import config as kconfig
from kiosk import layout
from kiosk.app import build_kiosk, printer_options
from kiosk.printer import profiles

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")


def config(tmp_path, printer: dict) -> kconfig.Config:
    return load({**process_config(tmp_path, 5), "printer": printer})


def test_sim_printer_is_as_wide_as_the_profile_says(tmp_path):
    out = tmp_path / "tickets"
    cfg = config(tmp_path, {"backend": "sim", "out_dir": str(out), "profile": "TM-T88V", "paper_width_mm": 80})
    layout.prepare(str(tmp_path / "cache"))
    profile = profiles.load("TM-T88V")
    assert profile.roll_mm == 80 and profile.dots != layout.DOTS[80]  # the case the generic width got wrong
    assert printer_options(cfg)["width_px"] == profile.dots
    kiosk = build_kiosk(cfg)
    kiosk.start()
    try:
        outcome = kiosk.handle_press("A")
    finally:
        kiosk.stop()
    assert outcome.printed
    [png] = sorted(out.glob("*.png"))
    assert Image.open(png).width == profile.dots


@pytest.fixture
def bench_printing(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import printing
    yield printing
    sys.modules.pop("printing", None)


def test_benchmark_checks_an_auto_image_qr_ticket_by_its_label(tmp_path, bench_printing):
    """qr_code = "auto" on a profile without GS ( k (TH230: no QR command, but a cutter, so the emulator
    sees a whole document) prints the QR as an image: the benchmark must check it as one."""
    cfg = config(tmp_path, file_printer(tmp_path, profile="TH230", paper_width_mm=80, qr_code="auto"))
    kiosk = build_kiosk(cfg)
    assert cfg.printer["qr_code"] == "auto" and not kiosk.paper.native_qr
    kiosk.start()
    try:
        ticket = kiosk.handle_press("A").ticket
        data = kiosk.render(ticket)
    finally:
        kiosk.stop()
    with Emulator() as emulator:
        emulator.receive(data, start=0.0)
        [document] = emulator.wait_for_documents(1, timeout=10)
    assert document.complete and not document.qr_payloads
    assert bench_printing.check_document(kiosk, document, ticket) is None
