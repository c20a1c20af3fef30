"""The one way a test or a benchmark starts ``kiosk run`` (or ``edge-agent run``) as a real process.

Readiness comes from the process itself over systemd's notify protocol: each process gets a
notify socket of its own (``$NOTIFY_SOCKET``) and is ready at ``READY=1``, the moment systemd
would call it started. Nothing greps the log and nothing sleeps. Its stderr is drained all the
time (a full pipe would block its logging) and kept, for the test's checks and a failure's message.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

# Variables of the caller's environment that would reconfigure the child or speak for another process.
FOREIGN = ("KIOSK_", "AGENT_", "ESCPOS_", "NOTIFY_", "WATCHDOG_")


def clean_env(**extra) -> dict:
    """This process's environment without KIOSK_*, AGENT_*, ESCPOS_*, NOTIFY_* and WATCHDOG_* variables."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}, **extra}


def kiosk_argv(config, *args: str) -> list:
    """``python -m kiosk run --config CONFIG``, or another kiosk command given as ``args``."""
    return [sys.executable, "-m", "kiosk", *(args or ("run", "--config", str(config)))]


def agent_argv(config) -> list:
    return [sys.executable, "-m", "edge_agent", "--config", str(config), "run"]


class Notify:
    """A systemd notify socket of our own: READY=1 says a process is up, WATCHDOG=1 counts its loop turns.

    It is read all the time: a full socket would block the process's sd_notify and so its loop.
    """

    def __init__(self, on_ready=None):
        name = f"antrean-test-{uuid.uuid4().hex[:12]}"
        self.address = "@" + name
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + name)
        self.ready = threading.Event()
        self.ready_at: float | None = None  # time.monotonic() of READY=1
        self.ping_times: list[float] = []  # time.monotonic() of each WATCHDOG=1
        self._on_ready = on_ready
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self._sock.recv(256)
            except OSError:
                return
            if not data:
                return
            if data == b"READY=1" and not self.ready.is_set():
                self.ready_at = time.monotonic()
                self.ready.set()
                if self._on_ready is not None:
                    self._on_ready()
            elif data == b"WATCHDOG=1":
                self.ping_times.append(time.monotonic())

    @property
    def pings(self) -> int:
        return len(self.ping_times)

    def longest_silence(self, start: float, end: float) -> float:
        """The longest time between ``start``, the WATCHDOG=1 pings in between and ``end``."""
        times = [start, *[t for t in self.ping_times if start < t < end], end]
        return max(b - a for a, b in zip(times, times[1:], strict=False))

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class Process:
    """One started process with its notify socket; ``ready`` once it said READY=1, ``ended`` once it exited.

    ``env`` is the child's whole environment (default: :func:`clean_env`); ``NOTIFY_SOCKET`` is added.
    """

    def __init__(self, argv: list, *, name: str = "kiosk", env: dict | None = None, stdin: bool = True,
                 cwd=None):
        self.name = name
        self.settled = threading.Event()  # ready, or ended before it
        self.ended = threading.Event()
        self.notify = Notify(on_ready=self.settled.set)
        self.lines: list[bytes] = []  # every line of its stderr, as it came
        env = {**(clean_env() if env is None else env), "NOTIFY_SOCKET": self.notify.address}
        self.began = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd, env=env)
        self._drain = threading.Thread(target=self._read_log, daemon=True)
        self._drain.start()

    def _read_log(self):
        for line in self.proc.stderr:
            self.lines.append(line)
        self.ended.set()
        self.settled.set()

    @property
    def ready(self) -> threading.Event:
        return self.notify.ready

    @property
    def ready_after_s(self) -> float | None:
        """Seconds from its start to READY=1; None before it."""
        return None if self.notify.ready_at is None else self.notify.ready_at - self.began

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self, tail: int | None = 3000) -> str:
        """What it wrote to stderr so far (the last ``tail`` characters; None: all of it)."""
        text = b"".join(self.lines).decode(errors="replace")
        return text if tail is None else text[-tail:]

    def settle(self, timeout_s: float = 60.0) -> bool:
        """True once ready; False if it ended (or hung) before it."""
        self.settled.wait(timeout_s)
        return self.ready.is_set()

    def wait_ready(self, timeout_s: float = 30.0) -> "Process":
        """Itself once ready; a process that ended or hung before it is killed and the test fails with its log."""
        if not self.settle(timeout_s):
            code = self.proc.poll()
            self.kill()
            raise AssertionError(f"{self.name} not ready within {timeout_s} s (exit {code}): {self.log()}")
        return self

    def press(self, keys: str) -> bool:
        """Keys on its stdin, as the keyboard button source reads them; False if it is gone."""
        try:
            self.proc.stdin.write(keys.encode() + b"\n")
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def close_input(self) -> None:
        """End of input: the keyboard source ends, and the kiosk stops as systemd's stop would make it."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def end(self, timeout_s: float = 30.0) -> int:
        """Wait for its exit (after SIGTERM or end of input); its status, with its whole log read."""
        try:
            code = self.proc.wait(timeout_s)
            self._drain.join(10)
        finally:
            self._tidy()
        return code

    def kill(self) -> int:
        """SIGKILL (a power cut), and wait until the process is gone (the kernel dropped its locks)."""
        if self.alive:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process dies on SIGKILL too; this only tidies up
            self.proc.kill()
        return self.end(10)

    def _tidy(self) -> None:
        self.notify.close()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.close_input()


def start_kiosk(config, *, env: dict | None = None, ready: bool = True, timeout_s: float = 30.0,
                name: str = "kiosk") -> Process:
    """``kiosk run --config CONFIG`` with the keyboard on its stdin; returned once ready unless ``ready=False``."""
    process = Process(kiosk_argv(config), name=name, env=env)
    return process.wait_ready(timeout_s) if ready else process


def start_agent(config, *, prefix: tuple = (), env: dict | None = None, name: str = "agent") -> Process:
    """``edge-agent run --config CONFIG`` (behind ``prefix``, e.g. a namespace); not waited for."""
    return Process([*prefix, *agent_argv(config)], name=name, env=env, stdin=False)
