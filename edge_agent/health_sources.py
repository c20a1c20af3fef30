"""Readers of the device's own health, at the true hardware edge, each one optional.

Every reader takes a ``Host``: where /proc, /sys, /dev and /run are (a root
prefix), how to run a command and how to stat a filesystem, so tests feed
fixture trees and fake command output. A reader returns its value or raises
``Unavailable``, whose message is the reason published in the health payload.
No reader can hang: commands are killed after ``COMMAND_TIMEOUT_S`` and the
kernel log is read non-blocking.
"""

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.boots import BOOT_ID_PATH

COMMAND_TIMEOUT_S = 2.0
THERMAL = "/sys/class/thermal/thermal_zone0/temp"
KMSG = "/dev/kmsg"
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"
# Bit numbers of `vcgencmd get_throttled`; the same condition "has occurred since boot" is 16 bits up.
THROTTLE_BITS = {"under_voltage": 0, "arm_freq_capped": 1, "throttled": 2, "soft_temp_limit": 3}
SINCE_BOOT_SHIFT = 16
# An SD/MMC fault names the device and says what went wrong. "mmc1" is the Wi-Fi chip on
# SDIO (its harmless "queuing unknown CIS tuple" has no fault word), and every Pi boots with
# "host does not support reading read-only switch", so "read-only" alone is not a fault.
MMC_DEVICE = re.compile(r"\bmmc(?:blk)?\d")
MMC_FAULT = re.compile(r"error|timeout|timed out|fail|never left busy|remounting filesystem read-only", re.I)
NO_SYSLOG = ("the agent may not read the kernel log (kernel.dmesg_restrict); give it CAP_SYSLOG "
             "(AmbientCapabilities=CAP_SYSLOG in its systemd unit)")
KMSG_MAX_BYTES = 4 << 20  # the ring buffer is far smaller; this only bounds a printk storm


class Unavailable(Exception):
    """This source is missing here (not a Pi, no permission, command absent); str() is the reason."""


def run_command(argv: list[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
    """Run ``argv`` and return its stdout; raise FileNotFoundError, TimeoutExpired or CalledProcessError."""
    env = dict(os.environ, LC_ALL="C")  # parse the same words whatever the locale
    # systemd's own tools (timedatectl) tell NOTIFY_SOCKET "ERRNO=..." when they fail: to systemd
    # that would be the agent speaking.
    env.pop("NOTIFY_SOCKET", None)
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=True,
                          env=env, encoding="utf-8", errors="replace")
    return done.stdout


@dataclass(frozen=True)
class Host:
    root: str = "/"
    run: Callable[[list[str], float], str] = run_command
    statvfs: Callable[[str], os.statvfs_result] = os.statvfs

    def path(self, logical: str) -> str:
        return os.path.join(self.root, logical.lstrip("/"))

    def read(self, logical: str, missing: str | None = None) -> str:
        """The text of ``logical`` (a path like /proc/loadavg) under the root."""
        try:
            with open(self.path(logical), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            raise Unavailable(missing or f"no {logical}") from None
        except OSError as exc:
            raise Unavailable(f"cannot read {logical}: {exc.strerror}") from None

    def command(self, argv: list[str], absent: str, hint: str = "") -> str:
        """The stdout of ``argv``; a missing, failing or hanging command becomes Unavailable."""
        name = " ".join(argv)
        try:
            return self.run(argv, COMMAND_TIMEOUT_S)
        except FileNotFoundError:
            raise Unavailable(absent) from None
        except subprocess.TimeoutExpired:
            raise Unavailable(f"{name} gave no answer within {COMMAND_TIMEOUT_S:g} s") from None
        except subprocess.CalledProcessError as exc:
            detail = (_first_line(exc.stderr) or _first_line(exc.stdout) or "no message").rstrip(".")
            raise Unavailable(f"{name} failed (exit {exc.returncode}): {detail}" + (f"; {hint}" if hint else "")) \
                from None
        except OSError as exc:
            raise Unavailable(f"cannot run {argv[0]}: {exc.strerror}") from None


def _first_line(text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _number(text: str, what: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        raise Unavailable(f"unexpected content in {what}: {text[:40]!r}") from None


# ---------------------------------------------------------------- CPU and power

def cpu_temp_c(host: Host) -> float:
    text = host.read(THERMAL, missing=f"no CPU temperature sensor ({THERMAL} absent; not a Raspberry Pi?)")
    return round(_number(text.strip(), THERMAL, int) / 1000, 1)  # the kernel gives millidegrees


def throttling(host: Host) -> dict:
    out = host.command(["vcgencmd", "get_throttled"], absent="vcgencmd not installed (not a Raspberry Pi?)",
                       hint="the agent's user needs the video group to reach the firmware")
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", out)
    if match is None:
        raise Unavailable(f"unexpected vcgencmd get_throttled output: {out.strip()[:60]!r}")
    return decode_throttled(int(match.group(1), 16))


def decode_throttled(value: int) -> dict:
    """All eight documented bits, by name: conditions now, and what has occurred since boot."""
    return {
        "raw": f"{value:#x}",
        "now": {name: bool(value >> bit & 1) for name, bit in THROTTLE_BITS.items()},
        "since_boot": {name: bool(value >> (bit + SINCE_BOOT_SHIFT) & 1) for name, bit in THROTTLE_BITS.items()},
    }


def model(host: Host) -> str:
    text = host.read("/proc/device-tree/model", missing="no device-tree model (not a Raspberry Pi?)")
    return text.rstrip("\x00\n")


# ---------------------------------------------------------------- load, memory, time since boot

def load(host: Host) -> list[float]:
    fields = host.read("/proc/loadavg").split()
    if len(fields) < 3:
        raise Unavailable("unexpected content in /proc/loadavg")
    return [_number(f, "/proc/loadavg") for f in fields[:3]]


def memory(host: Host) -> dict:
    kib = {}
    for line in host.read("/proc/meminfo").splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemTotal", "MemAvailable"):
            kib[name] = _number(rest.split()[0], "/proc/meminfo", int)
    if len(kib) < 2 or kib["MemTotal"] <= 0:
        raise Unavailable("/proc/meminfo lacks MemTotal or MemAvailable")
    total, available = kib["MemTotal"] * 1024, kib["MemAvailable"] * 1024
    return {"total_bytes": total, "available_bytes": available,
            "used_percent": round((total - available) / total * 100, 1)}


def uptime_s(host: Host) -> int:
    text = host.read("/proc/uptime").strip()
    return int(_number(text.split()[0] if text else "", "/proc/uptime"))


def boot_id(host: Host) -> str:
    text = host.read(BOOT_ID_PATH).strip()
    if not text:
        raise Unavailable(f"{BOOT_ID_PATH} is empty")
    return text


# ---------------------------------------------------------------- storage

def disk(host: Host, data_dir: str) -> dict:
    try:
        st = host.statvfs(data_dir)
    except FileNotFoundError:
        raise Unavailable(f"data_dir {data_dir} does not exist yet") from None
    except OSError as exc:
        raise Unavailable(f"cannot stat data_dir {data_dir}: {exc.strerror}") from None
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize  # f_bavail: what the kiosk may use
    if total <= 0:
        raise Unavailable(f"the filesystem of {data_dir} reports no size")
    return {"path": data_dir, "free_bytes": free, "total_bytes": total, "free_percent": round(free / total * 100, 1)}


def data_mount(host: Host, data_dir: str) -> dict:
    found = find_mount(host.read("/proc/mounts"), os.path.realpath(data_dir))
    if found is None:
        raise Unavailable(f"no mount in /proc/mounts contains {data_dir}")
    return found


def find_mount(mounts_text: str, path: str) -> dict | None:
    """The mount holding ``path``: the longest mount point above it; a later line is mounted on top."""
    best = None
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        device, point, fs, options = (_unescape(f) for f in fields[:4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best["mount_point"])):
            best = {"mount_point": point, "device": device, "fs": fs, "readonly": "ro" in options.split(",")}
    return best


def _unescape(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mmc_errors(host: Host) -> dict:
    lines, source = kernel_log(host)
    return {**count_mmc_errors(lines), "source": source}


def count_mmc_errors(lines) -> dict:
    hits = [line.strip() for line in lines if MMC_DEVICE.search(line) and MMC_FAULT.search(line)]
    return {"count": len(hits), "last": hits[-1][:200] if hits else None}


def kernel_log(host: Host) -> tuple[list[str], str]:
    """The kernel log's lines: /dev/kmsg when there is one (no subprocess), else ``dmesg``."""
    try:
        return _kmsg_messages(_read_kmsg(host.path(KMSG))), KMSG
    except FileNotFoundError:
        pass  # no /dev/kmsg (a container, a test tree): ask dmesg
    except PermissionError:
        raise Unavailable(f"{KMSG}: permission denied; {NO_SYSLOG}") from None
    except OSError as exc:
        raise Unavailable(f"cannot read {KMSG}: {exc.strerror}") from None
    out = host.command(["dmesg"], absent=f"no {KMSG} and no dmesg command: the kernel log cannot be read",
                       hint=NO_SYSLOG)
    return out.splitlines(), "dmesg"


def _read_kmsg(path: str) -> bytes:
    # Non-blocking: at the end of the ring buffer a read says EAGAIN instead of waiting for news.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks, size = [], 0
    try:
        while size < KMSG_MAX_BYTES:
            try:
                chunk = os.read(fd, 16384)  # one record per read; records are at most 8 KiB
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue  # the record under us was overwritten; the next read goes on from the oldest
            if not chunk:
                break  # a plain file (a fixture) ends
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _kmsg_messages(data: bytes) -> list[str]:
    # A record is "priority,sequence,microseconds,flags;message"; its continuation lines
    # (" SUBSYSTEM=block") have no ";" and come out empty.
    return [line.partition(";")[2] for line in data.decode("utf-8", "replace").splitlines()]


# ---------------------------------------------------------------- clock

def clock_synced(host: Host) -> bool:
    """NTP synchronised per timedatectl; else whether systemd-timesyncd has synchronised since boot."""
    try:
        answer = host.command(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                              absent="timedatectl not installed").strip()
        if answer in ("yes", "no"):
            return answer == "yes"
        why = f"timedatectl answered {answer[:40]!r}"
    except Unavailable as exc:
        why = str(exc)
    if os.path.exists(host.path(TIMESYNC_FLAG)):
        return True
    if os.path.isdir(host.path(os.path.dirname(TIMESYNC_FLAG))):
        return False  # timesyncd runs but has not reached a time server since boot
    raise Unavailable(f"{why}; and no {os.path.dirname(TIMESYNC_FLAG)} (systemd-timesyncd not running)")
