"""A batch of owed reprints (print_failed tickets printed again, CETAK ULANG, when the printer comes
back) must not stop the kiosk's heartbeat nor systemd's watchdog pings: each reprint takes seconds on a
slow link, and a batch of them took one turn of the worker loop, longer than heartbeat_stale_s.

The kiosk prints through a real pty to the ESC/POS emulator paced at a low baud rate; the heartbeat is
judged by the readers' own code (kiosk/liveness.py) while the batch prints."""

import datetime as dt
import logging
import os
import threading
import time

import pytest
from escpos_emulator import Emulator, PtyLink
from support.config import process_config, toml
from support.kiosk_process import Notify

from kiosk import config as kconfig
from kiosk import lock, servicedays
from kiosk.app import build_kiosk
from kiosk.ledger import Ledger
from kiosk.liveness import Heartbeat, Liveness, Watch

STALE_S = 3  # the smallest heartbeat_stale_s the config allows
BAUD = 4800  # a reprint (about 380 bytes) takes 0.8 s on the wire; the batch several times STALE_S
REPRINTS = 8


def config_text(tmp_path, port: str, baud: int = BAUD, stale_s: int = STALE_S) -> str:
    serial = {"backend": "serial", "serial_port": port, "baud_rate": baud}
    return toml({**process_config(tmp_path, 50), "heartbeat_stale_s": stale_s, "printer": serial})


def owe_reprints(cfg, n: int) -> None:
    """``n`` tickets whose print failed (paper ran out), as the ledger keeps them."""
    ledger = Ledger(cfg.ledger_path, cfg.office_id, cfg.tz)
    try:
        now = dt.datetime.now(cfg.tz)
        days = servicedays.booking_days(cfg.calendar, now)
        for _ in range(n):
            ticket = ledger.issue_ticket(cfg.service("A"), days, now)
            ledger.mark_print_failed(ticket.id, "printer paper_out after the ticket was sent", now)
    finally:
        ledger.close()


class Sampler:
    """Reads the kiosk's liveness as the agent and lobby do, every 0.1 s, until stopped."""

    def __init__(self, data_dir: str):
        self.watch = Watch(data_dir, STALE_S)
        self.readings = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.1):
            self.readings.append(self.watch.read())

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.readings


@pytest.fixture
def printer(tmp_path):
    with Emulator() as emulator, PtyLink(emulator, str(tmp_path / "ttyPRINTER"), baud=BAUD) as link:
        emulator.set_paper("out")  # the roll ran out: the tickets failed
        yield emulator, link


@pytest.mark.parametrize("when", ["printer comes back", "kiosk starts"])
def test_a_batch_of_reprints_never_lets_the_heartbeat_go_stale(tmp_path, printer, monkeypatch, when):
    emulator, link = printer
    systemd = Notify()  # the socket systemd would listen on
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.address)
    cfg = kconfig.loads(config_text(tmp_path, link.link_path), source="test")
    owe_reprints(cfg, REPRINTS)
    if when == "kiosk starts":
        emulator.set_paper("ok")  # a new roll while the kiosk was down: it prints what it owes as it starts
    held = lock.hold(cfg.data_dir)  # as `kiosk run`: the lock, the heartbeat, then the kiosk
    Heartbeat(cfg.data_dir).start()
    kiosk = build_kiosk(cfg)
    sampler = Sampler(cfg.data_dir)
    started = time.monotonic()
    try:
        kiosk.start()
        if when == "printer comes back":
            assert not kiosk.printer_status.can_print
            emulator.set_paper("ok")  # a new roll: the worker prints what it owes, in one batch
        documents = emulator.wait_for_documents(REPRINTS, timeout=60)
        took = time.monotonic() - started
        readings = sampler.stop()
        silence = systemd.longest_silence(started, time.monotonic())
    finally:
        kiosk.stop()
        lock.release(held)
        systemd.close()
    assert all("CETAK ULANG" in d.text(32) for d in documents)
    assert took > 2 * STALE_S, f"the batch took {took:.1f} s: too slow a link is needed to show anything"
    worst = max(r.heartbeat_age_s for r in readings)
    assert {r.state for r in readings} == {Liveness.RUNNING}, \
        f"the kiosk read as {[r.state.value for r in readings if r.state is not Liveness.RUNNING][:1]} " \
        f"during a {took:.1f} s batch of {REPRINTS} reprints; oldest heartbeat {worst:.1f} s"
    assert worst < STALE_S
    assert silence < STALE_S, f"no watchdog ping for {silence:.1f} s"


@pytest.mark.parametrize("baud, stale_s, watchdog_s, said", [
    (9600, 20, 30, None),  # the defaults: a ticket, a stall and the status questions fit well
    (1200, 3, None, logging.WARNING),  # it would read as hung during every ticket
    (1200, 20, 5, logging.ERROR),  # systemd would kill it mid-ticket
])
def test_a_link_too_slow_for_one_ticket_between_beats_is_said_at_start(tmp_path, printer, monkeypatch, caplog,
                                                                      baud, stale_s, watchdog_s, said):
    """Beats come between tickets, not inside one: whether one ticket fits the limits is said at start."""
    _, link = printer
    if watchdog_s is not None:  # as systemd tells the kiosk its unit's WatchdogSec
        monkeypatch.setenv("WATCHDOG_USEC", str(watchdog_s * 1_000_000))
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    cfg = kconfig.loads(config_text(tmp_path, link.link_path, baud, stale_s), source="test")
    kiosk = build_kiosk(cfg)
    caplog.set_level(logging.INFO, logger="kiosk")
    kiosk.start()
    kiosk.stop()
    warned = [r for r in caplog.records if "liveness limits" in r.getMessage()]
    assert [r.levelno for r in warned] == ([said] if said else []), [r.getMessage() for r in warned]
    if said:
        assert warned[0].baud_rate == baud and warned[0].ticket_s > min(stale_s, watchdog_s or stale_s)
