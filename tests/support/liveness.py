"""The test process standing in for a live kiosk: it holds the data directory's real lock and beats.

For tests of readers (health, lobby) that need "the kiosk runs" without a kiosk process; the
liveness itself is tested against real ``kiosk run`` processes in test_liveness.py."""

import contextlib
import threading

from kiosk import lock
from kiosk.liveness import BEAT_EVERY_S, Heartbeat


@contextlib.contextmanager
def kiosk_alive(data_dir: str):
    held = lock.hold(data_dir)
    heartbeat = Heartbeat(data_dir)
    heartbeat.start()
    stop = threading.Event()

    def beat():
        while not stop.wait(BEAT_EVERY_S / 2):
            heartbeat.beat()

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    try:
        yield heartbeat
    finally:
        stop.set()
        beater.join()
        lock.release(held)
