"""Every file the kiosk, the agent and the lobby write survives a power cut whole or not at all.

A SIGKILL keeps what reached the kernel, so it cannot show a lost rename or a
file name that never reached the disk. These tests watch the real system
calls instead (strace): a file that must survive is written under a
temporary name, flushed, renamed (or linked) into place, and then its
directory is flushed; no file is ever truncated and rewritten in place.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading

from support import need

from kiosk.signing import KEY_BYTES, load_or_create_key

STRACE = shutil.which("strace")
TRACED = "openat,?open,?creat,fsync,fdatasync,?rename,renameat,renameat2,?link,linkat"  # ? : not on every arch
CALL = re.compile(r"^(?:\d+ +)?(?P<name>\w+)\((?P<args>.*)\) += (?P<result>-?\d+)")
FD_PATH = re.compile(r"^\d+<(?P<path>[^>]*)>")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR")


def trace(tmp_path, argv: list[str], env: dict | None = None) -> list[dict]:
    """Run ``argv`` under strace; its successful file calls, oldest first."""
    need(STRACE is not None, "strace is not installed")
    log = tmp_path / f"strace.{len(list(tmp_path.glob('strace.*')))}.log"
    result = subprocess.run([STRACE, "-f", "-qq", "-y", "-e", f"trace={TRACED}", "-o", str(log), *argv],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    calls = []
    for line in log.read_text().splitlines():
        match = CALL.match(line)
        if match and int(match["result"]) >= 0:
            calls.append({"name": match["name"], "args": match["args"], "paths": re.findall(r'"([^"]*)"', line)})
    return calls


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def synced_path(call: dict) -> str | None:
    if call["name"] in ("fsync", "fdatasync"):
        match = FD_PATH.match(call["args"])
        return match["path"] if match else None
    return None


def placement_problems(calls: list[dict], path: str, durable: bool = True) -> list[str]:
    """How the writing of ``path`` could leave it half-written or lost by a power cut (empty: it cannot)."""
    path = os.path.realpath(path)
    problems = [f"{c['name']}({c['args']}) writes {path} in place" for c in calls
                if c["name"] in ("open", "openat", "creat") and path in c["paths"]
                and (c["name"] == "creat" or any(flag in c["args"] for flag in WRITE_FLAGS))]
    placed = [i for i, c in enumerate(calls)
              if c["name"] in ("rename", "renameat", "renameat2", "link", "linkat") and c["paths"][-1:] == [path]]
    if not placed:
        return problems + [f"{path} is never renamed or linked into place"]
    at = placed[-1]
    temporary = calls[at]["paths"][0]
    if durable and not any(synced_path(c) == temporary for c in calls[:at]):
        problems.append(f"{temporary} is not flushed before it becomes {path}")
    if durable and not any(synced_path(c) == os.path.dirname(path) for c in calls[at:]):
        problems.append(f"the directory of {path} is not flushed after {calls[at]['name']}: "
                        "a power cut can lose the name")
    return problems


# ---------------------------------------------------------------- keys


def test_ticket_key_name_is_on_disk_before_a_ticket_is_signed(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    calls = trace(tmp_path, python(f"""
        from kiosk.signing import load_or_create_key
        load_or_create_key({str(data_dir)!r})"""))
    assert placement_problems(calls, data_dir / "ticket.key") == []
    assert len((data_dir / "ticket.key").read_bytes()) == KEY_BYTES
    assert [p.name for p in data_dir.iterdir()] == ["ticket.key"]  # no temporary left behind


def test_ticket_key_is_made_where_a_killed_start_left_its_temporary(tmp_path):
    """A power cut between writing the temporary and linking it leaves the temporary; after a
    reboot the kiosk often gets the same pid again, and must still make its key."""
    for name in (f"ticket.key.{os.getpid()}.tmp", f"ticket.key.{os.getpid()}.{threading.get_native_id()}.tmp"):
        (tmp_path / name).write_bytes(b"half")
    key = load_or_create_key(str(tmp_path))
    assert (tmp_path / "ticket.key").read_bytes() == key and len(key) == KEY_BYTES


def test_temporaries_a_cut_left_are_removed_and_a_live_writers_kept(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    cut = tmp_path / f"ticket.key.{gone.pid}.{gone.pid}.tmp"  # its writer was killed before the link
    writing, done = threading.Event(), threading.Event()
    writer = threading.Thread(target=lambda: (writing.set(), done.wait()))  # another thread, mid-write
    writer.start()
    writing.wait()
    live = tmp_path / f"ticket.key.{os.getpid()}.{writer.native_id}.tmp"
    unrelated = tmp_path / f"ticket.keys.{gone.pid}.{gone.pid}.tmp"
    for path in (cut, live, unrelated):
        path.write_bytes(b"k" * KEY_BYTES)
    try:
        load_or_create_key(str(tmp_path))
    finally:
        done.set()
        writer.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ticket.key", live.name, unrelated.name])


def test_a_file_rewritten_every_second_sweeps_what_a_cut_left_once(tmp_path):
    """The heartbeat and network.json are rewritten all day, unflushed: a cut mid-write leaves a
    temporary, which the process's first write of that file removes."""
    from common.durable import write_atomic

    gone = subprocess.Popen(["true"])
    gone.wait()
    path = tmp_path / "kiosk.heartbeat"
    (tmp_path / f"kiosk.heartbeat.{gone.pid}.{gone.pid}.tmp").write_bytes(b"{")
    for beat in range(3):
        write_atomic(str(path), b'{"beat": %d}' % beat, durable=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kiosk.heartbeat"]


def test_lobby_secret_name_is_on_disk_before_a_session_is_signed(tmp_path):
    path = tmp_path / "agent" / "lobby-secret.key"
    calls = trace(tmp_path, python(f"""
        from lobby.auth import load_secret_key
        load_secret_key({str(path)!r})"""))
    assert placement_problems(calls, path) == []
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_lobby_secret_too_short_to_be_a_key_is_replaced_whole(tmp_path):
    from lobby.auth import load_secret_key

    path = tmp_path / "lobby-secret.key"
    path.write_bytes(b"")  # what an older version's power cut could leave
    key = load_secret_key(str(path))
    assert len(key) >= 32 and path.read_bytes() == key and load_secret_key(str(path)) == key


def test_network_state_is_replaced_never_rewritten_in_place(tmp_path):
    """network.json is rewritten every round: atomic, but deliberately not flushed (SD wear)."""
    calls = trace(tmp_path, python(f"""
        from edge_agent.seam import write_network
        for round in range(3):
            write_network({str(tmp_path)!r}, {{"round": round, "verdict": {{}}}})"""))
    assert placement_problems(calls, tmp_path / "network.json", durable=False) == []
    assert not [c for c in calls if synced_path(c)], "network.json must not cost an fsync per round"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("strace.")) == ["network.json"]


# ---------------------------------------------------------------- SQLite files


def test_new_sqlite_files_get_their_names_flushed(tmp_path):
    """The ledger and the agent's state are SQLite: SQLite flushes the directory after creating its
    journal or WAL, which is after the database file's own creation, so its name is on disk too."""
    calls = trace(tmp_path, python(f"""
        import zoneinfo
        from kiosk.ledger import Ledger
        from edge_agent.boots import BootLog
        from edge_agent.outages import OutageLog
        from edge_agent.outbox import Outbox
        from edge_agent.store import AgentStore
        d = {str(tmp_path)!r}
        Ledger(d + "/ledger.sqlite3", "o", zoneinfo.ZoneInfo("Asia/Jakarta")).close()
        AgentStore(d).close()
        Outbox(d + "/outbox.sqlite3").close()
        OutageLog(d + "/outages.sqlite3").close()
        BootLog(d).start()"""))
    made = {c["paths"][0]: i for i, c in enumerate(calls)
            if c["name"] == "openat" and "O_CREAT" in c["args"] and c["paths"][0].endswith(".sqlite3")}
    assert len(made) == 5, sorted(made)
    for path, i in made.items():
        assert any(synced_path(c) == str(tmp_path) for c in calls[i:]), f"{path}'s name is never flushed"


def test_ledger_schema_is_made_whole_or_not_at_all(tmp_path):
    """A first start cut while the ledger's tables are made (here: SIGKILL as the events table is
    about to be made) leaves none of them, never a ledger with tickets but no events for readers."""
    path = tmp_path / "ledger.sqlite3"
    code = f"""
        import os, signal, zoneinfo
        from common import db
        from kiosk import ledger

        def connect(*args, **kwargs):
            conn = real(*args, **kwargs)
            conn.set_trace_callback(lambda sql: "TABLE IF NOT EXISTS events" in sql
                                    and os.kill(os.getpid(), signal.SIGKILL))
            return conn

        real, db.connect = db.connect, connect
        ledger.Ledger({str(path)!r}, "o", zoneinfo.ZoneInfo("Asia/Jakarta"))"""
    result = subprocess.run(python(code), capture_output=True, text=True, timeout=60)
    assert result.returncode == -9, result.stderr  # it really was cut there
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == []
