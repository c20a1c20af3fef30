"""One kiosk process per data directory: it alone issues tickets and owns the printer."""

import fcntl
import os

from kiosk.errors import KioskError

LOCK_FILE = "kiosk.lock"


class KioskRunning(KioskError):
    """Another kiosk process holds the data directory."""


def hold(data_dir: str) -> int:
    """Take the data directory's lock; the kernel drops it when the process ends, even on SIGKILL."""
    os.makedirs(data_dir, exist_ok=True)
    fd = os.open(os.path.join(data_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise KioskRunning(f"a kiosk is already running with data_dir {data_dir!r}; "
                           "stop it first (systemctl stop antrean-kiosk)") from None
    return fd


def release(fd: int) -> None:
    os.close(fd)
