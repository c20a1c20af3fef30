"""Printer-profile follow-ups of issue 12: the sim printer's width and the printing benchmark's QR check
both come from the profile the layout resolves, not from the paper width or the configured word alone."""

import sys
from pathlib import Path

import pytest
from escpos_emulator import Emulator
from PIL import Image
from test_power_cut import CONFIG

from kiosk import config as kconfig
from kiosk import layout
from kiosk.app import build_kiosk, printer_options
from kiosk.printer import profiles

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")


def config(tmp_path, printer: str) -> kconfig.Config:
    text = CONFIG.format(data_dir=tmp_path, quota=5)
    file_printer = f'backend = "file"\npath = "{tmp_path}/printer.out"\ncreate = true\n'
    assert file_printer in text
    return kconfig.loads(text.replace(file_printer, printer), source="test")


def test_sim_printer_is_as_wide_as_the_profile_says(tmp_path):
    out = tmp_path / "tickets"
    cfg = config(tmp_path, f'backend = "sim"\nout_dir = "{out}"\nprofile = "TM-T88V"\npaper_width_mm = 80\n')
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
    cfg = config(tmp_path, f'backend = "file"\npath = "{tmp_path}/printer.out"\ncreate = true\n'
                           'profile = "TH230"\npaper_width_mm = 80\nqr_code = "auto"\n')
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
