"""Whether the kiosk is alive: running, not running (stopped or crashed), or hung.

The ledger cannot tell: it keeps the last state the kiosk saw, also after the
kiosk died. Two proofs outside it, read by ``kiosk status``, the agent and the
lobby page:

- **The data directory's lock** (kiosk/lock.py). The kernel holds it while the
  kiosk process lives and drops it however the process ends (SIGKILL, crash,
  power cut). It is read from /proc/locks, never by taking it: a reader's
  probe, however brief, could make a kiosk starting at that instant believe
  another one is running, and exit.
- **The heartbeat** ``<data_dir>/kiosk.heartbeat``. Written once at start
  (who, since when), then its modification time is set from the worker loop
  (the same loop that pings systemd's watchdog) about once a second, also
  between the long steps of one turn (each reprint of a batch): an
  ``os.utime``, no data and no fsync, so the SD card is not worn. A process
  holding the lock whose heartbeat is older than ``heartbeat_stale_s`` is
  alive but stuck: hung.

A clean stop writes ``stopped_at`` into the heartbeat, so a reader tells
"stopped" from "ended without stopping" (a crash, a kill, a power cut).
"""

import dataclasses
import datetime as dt
import enum
import json
import logging
import os
import threading
import time

from common.durable import write_atomic
from kiosk.errors import KioskError
from kiosk.lock import LOCK_FILE

log = logging.getLogger("kiosk")
HEARTBEAT_FILE = "kiosk.heartbeat"
BEAT_EVERY_S = 0.9  # just under the idle loop's 1 s poll, so an idle kiosk beats at every turn
PROC_LOCKS = "/proc/locks"


class Liveness(str, enum.Enum):
    RUNNING = "running"
    NOT_RUNNING = "not_running"  # stopped, crashed, or never started
    HUNG = "hung"  # the process lives, its worker loop has not beaten within the limit


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


# ---------------------------------------------------------------- the kiosk's side

class Heartbeat:
    """Written by the kiosk: ``start`` once the lock is held, ``beat`` from the worker loop, ``stopped`` at the end."""

    def __init__(self, data_dir: str, monotonic=time.monotonic):
        self.path = os.path.join(data_dir, HEARTBEAT_FILE)
        self._monotonic = monotonic
        self._last = float("-inf")
        self._failed: str | None = None  # said once, not every second into the journal

    def start(self) -> None:
        self._write({"pid": os.getpid(), "pid_ns": _pid_namespace(), "started_at": time.time(), "stopped_at": None})

    def stopped(self) -> None:
        self._write({"pid": os.getpid(), "pid_ns": _pid_namespace(), "started_at": None, "stopped_at": time.time()})

    def beat(self) -> bool:
        """Beat if one is due (at most every BEAT_EVERY_S); whether it was due, written or not."""
        now = self._monotonic()
        if now - self._last < BEAT_EVERY_S:
            return False
        self._last = now  # a card that refuses the beat is tried again at the same pace
        try:
            os.utime(self.path)  # the kernel's time: the file's mtime is the beat
        except FileNotFoundError:
            self.start()  # deleted under us (a technician cleaning up): begin again
        except OSError as exc:
            self._say_failed(exc)  # no hang all the same: systemd's watchdog still hears the loop
        return True

    def _write(self, body: dict) -> None:
        try:
            write_atomic(self.path, json.dumps(body).encode(), mode=0o644, durable=False)
            self._last = self._monotonic()
        except OSError as exc:  # a read-only or full card must not stop the kiosk; readers will say hung
            self._say_failed(exc)

    def _say_failed(self, exc: OSError) -> None:
        if str(exc) != self._failed:
            self._failed = str(exc)
            log.error("heartbeat cannot be written; the agent and lobby will report the kiosk as not alive",
                      extra={"path": self.path, "error": str(exc)})


# ---------------------------------------------------------------- the readers' side

@dataclasses.dataclass(frozen=True)
class Reading:
    state: Liveness
    detail: str
    heartbeat_at: float | None = None  # epoch s, the kiosk's last beat
    heartbeat_age_s: float | None = None
    ended: str | None = None  # when not running: "stopped", "crashed" (ended without stopping), or None
    stale_after_s: int = 0

    def to_dict(self, tz) -> dict:
        at = None if self.heartbeat_at is None else dt.datetime.fromtimestamp(self.heartbeat_at, tz)
        return {"state": self.state.value, "detail": self.detail, "ended": self.ended,
                "heartbeat_at": at.isoformat(timespec="seconds") if at else None,
                "heartbeat_age_s": None if self.heartbeat_age_s is None else round(self.heartbeat_age_s, 1),
                "stale_after_s": self.stale_after_s}


class LockUnknown(KioskError):
    """Whether a process holds the lock cannot be read here (no /proc/locks, no access); never leaves this module."""


def lock_holder(data_dir: str, locks_path: str = PROC_LOCKS) -> int | None:
    """The pid holding ``<data_dir>/kiosk.lock`` (0 if in another pid namespace), or None if no one does."""
    path = os.path.join(data_dir, LOCK_FILE)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None  # no kiosk ever ran here
    except OSError as exc:
        raise LockUnknown(f"cannot stat {path}: {exc.strerror}; give this user access to data_dir") from None
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open(locks_path, encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise LockUnknown(f"cannot read {locks_path}: {exc.strerror}") from None
    for line in lines:
        # "3: FLOCK  ADVISORY  WRITE 25440 fe:00:2166718 0 EOF"; "3: -> FLOCK ..." is a waiter, not a holder.
        # Any type counts: on NFS the kernel emulates flock with a POSIX lock.
        fields = line.split()
        if len(fields) >= 6 and fields[1] != "->" and fields[5] == key:
            return int(fields[4]) if fields[4].lstrip("-").isdigit() else 0
    return None


def _read_heartbeat(path: str) -> tuple[dict, float | None]:
    """The heartbeat's body and its mtime; ``({}, None)`` when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            body = json.loads(f.read() or "{}")
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError):
        return {}, None  # unreadable: judged like a missing one, by the lock alone
    return (body if isinstance(body, dict) else {}), mtime


class Watch:
    """Judges the kiosk's liveness; kept by a long-lived reader (the agent, the lobby) across calls.

    The heartbeat's age is measured on the reader's monotonic clock once it has
    seen the mtime move, so a step of the system clock (NTP at boot, on a Pi
    without a real-time clock) is not taken for a hang. A one-shot reader
    (``kiosk status``) has only the wall clock."""

    def __init__(self, data_dir: str, stale_after_s: int, clock=time.time, monotonic=time.monotonic,
                 locks_path: str = PROC_LOCKS):
        self.data_dir, self.stale_after_s = data_dir, stale_after_s
        self._clock, self._monotonic, self._locks_path = clock, monotonic, locks_path
        self._path = os.path.join(data_dir, HEARTBEAT_FILE)
        self._seen: tuple[float, float, float] | None = None  # (mtime, when we looked, lower bound of the beat)
        self._lock = threading.Lock()  # the lobby serves requests on several threads

    def read(self) -> Reading:
        # The lock first: a kiosk takes it and then writes its heartbeat, so in this order a
        # starting kiosk is never seen with its predecessor's heartbeat.
        try:
            holder, unknown = lock_holder(self.data_dir, self._locks_path), None
        except LockUnknown as exc:
            holder, unknown = None, str(exc)
        body, mtime = _read_heartbeat(self._path)
        with self._lock:
            age = self._age(mtime)
        if unknown is not None:
            return self._judge_without_lock(body, mtime, age, unknown)
        return self._judge(holder, body, mtime, age)

    def _age(self, mtime: float | None) -> float | None:
        if mtime is None:
            self._seen = None
            return None
        looked = self._monotonic()
        wall_age = max(self._clock() - mtime, 0.0)
        if self._seen is None:
            beat = looked - wall_age
        elif mtime != self._seen[0]:  # it moved since our last look: the beat came after that look
            beat = max(self._seen[1], looked - wall_age)
        else:
            beat = self._seen[2]
        self._seen = (mtime, looked, beat)
        return looked - beat

    def _judge(self, holder: int | None, body: dict, mtime, age) -> Reading:
        common = {"heartbeat_at": mtime, "heartbeat_age_s": age, "stale_after_s": self.stale_after_s}
        if holder is None or body.get("stopped_at") is not None:
            ended = _ended(body)
            return Reading(Liveness.NOT_RUNNING, _not_running_detail(ended), ended=ended, **common)
        if _other_holder(holder, body):
            return Reading(Liveness.NOT_RUNNING, f"no kiosk is running; its data directory is held by pid {holder}, "
                           "a staff command such as `kiosk reprint`", ended=_ended(body), **common)
        if age is None or age > self.stale_after_s:
            since = "never" if age is None else f"for {age:.0f} s"
            return Reading(Liveness.HUNG, f"the kiosk process (pid {holder or '?'}) is alive but its worker loop "
                           f"has not beaten {since} (limit {self.stale_after_s} s); systemd's watchdog restarts it, "
                           "else `systemctl restart antrean-kiosk`", **common)
        return Reading(Liveness.RUNNING, f"pid {holder or '?'}, heartbeat {age:.0f} s ago", **common)

    def _judge_without_lock(self, body: dict, mtime, age, why: str) -> Reading:
        common = {"heartbeat_at": mtime, "heartbeat_age_s": age, "stale_after_s": self.stale_after_s}
        if body.get("stopped_at") is None and age is not None and age <= self.stale_after_s:
            return Reading(Liveness.RUNNING, f"heartbeat {age:.0f} s ago ({why})", **common)
        return Reading(Liveness.NOT_RUNNING, f"no heartbeat within {self.stale_after_s} s; a stopped kiosk cannot be "
                       f"told from a hung one here ({why})", ended=_ended(body), **common)


def read_liveness(data_dir: str, stale_after_s: int, clock=time.time) -> Reading:
    """One look, on the wall clock: for ``kiosk status``."""
    return Watch(data_dir, stale_after_s, clock=clock).read()


def _ended(body: dict) -> str | None:
    if not body:
        return None  # never started here, or its heartbeat is gone
    return "stopped" if body.get("stopped_at") is not None else "crashed"


def _not_running_detail(ended: str | None) -> str:
    if ended == "stopped":
        return "the kiosk was stopped; start it with `systemctl start antrean-kiosk`"
    if ended == "crashed":
        return ("the kiosk ended without stopping (a crash, a kill or a power cut); systemd restarts it, "
                "else see `journalctl -u antrean-kiosk`")
    return "the kiosk has not run with this data_dir; start it with `systemctl start antrean-kiosk`"


def _other_holder(holder: int, body: dict) -> bool:
    """Whether the lock's holder is not the kiosk that wrote the heartbeat (pids compared only within one
    pid namespace: /proc/locks shows them as the reader sees them)."""
    pid, ns = body.get("pid"), body.get("pid_ns")
    return bool(holder) and isinstance(pid, int) and ns is not None and ns == _pid_namespace() and pid != holder
