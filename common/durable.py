"""Files that a power cut cannot leave half-written.

A file is written to a temporary name in its own directory, flushed to the
disk, renamed over the old one, and then the directory itself is flushed:
without that last step a power cut can lose the rename (or the new name of a
file just created) on ext4 and on an SD card. A reader therefore sees the
old whole file or the new whole file, never a mix, and never an empty one.

``durable=False`` keeps the atomic rename but skips both flushes, for files
that are rewritten every few seconds and cheap to lose (a heartbeat, the
latest network state): they must never be half-written, but fsyncing them
thousands of times a day would wear the card.
"""

import os
import re
import threading

__all__ = ["fsync_dir", "write_atomic", "create_once", "remove_orphans"]


def fsync_dir(directory: str) -> None:
    """Flush ``directory``'s entries (a rename or a new name in it) to the disk."""
    fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: all of it or none of it, even across a power cut."""
    directory = os.path.dirname(path) or "."
    tmp = _write_temporary(path, data, mode, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(directory)


def create_once(path: str, data: bytes, mode: int = 0o600) -> bool:
    """Create ``path`` with ``data`` unless it exists; durable before this returns.

    Returns False when another process created it first (its file is kept:
    a key must never be replaced under a running reader).
    """
    tmp = _write_temporary(path, data, mode, durable=True)
    try:
        os.link(tmp, path)  # atomic and refuses to overwrite, unlike rename
    except FileExistsError:
        return False
    finally:
        _unlink_quietly(tmp)
    fsync_dir(os.path.dirname(path) or ".")
    return True


def remove_orphans(path: str) -> int:
    """Delete temporaries of ``path`` whose writer is gone; how many.

    A power cut between writing a temporary and renaming it leaves it behind,
    and nothing else would ever remove it (the file itself may be written by
    the next start, under another temporary). A writer still alive keeps its own.
    """
    directory, name = os.path.split(path)
    removed = 0
    for entry in os.scandir(directory or "."):
        writer = _TEMPORARY.fullmatch(entry.name[len(name):]) if entry.name.startswith(name) else None
        if writer is not None and not _writing(int(writer[1]), int(writer[2])):
            removed += _unlink_quietly(entry.path)
    return removed


_TEMPORARY = re.compile(r"\.(\d+)\.(\d+)\.tmp")


def _writing(pid: int, thread: int) -> bool:
    if pid == os.getpid():  # a temporary of this pid: ours only if that thread is alive (pids repeat after a boot)
        return os.path.exists(f"/proc/self/task/{thread}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


_swept: set[str] = set()  # paths whose orphans this process has looked for: once is enough


def _sweep_once(path: str) -> None:
    """remove_orphans at a process's first write of ``path`` (a heartbeat is written every second)."""
    if path in _swept:
        return
    _swept.add(path)
    try:
        remove_orphans(path)
    except OSError:
        pass  # a directory it cannot list: the write that follows says what is wrong


def _write_temporary(path: str, data: bytes, mode: int, durable: bool) -> str:
    _sweep_once(path)
    # Per process and thread, so two writers of one file never share a temporary.
    tmp = f"{path}.{os.getpid()}.{threading.get_native_id()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    os.chmod(tmp, mode)  # the umask must not narrow it: the lobby may run as another user
    return tmp


def _unlink_quietly(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
