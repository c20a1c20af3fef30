"""No cache can stop a start: python-escpos's capabilities pickle, damaged, is discarded and rebuilt.

python-escpos used to write its pickle in place while parsing its printer
database; a power cut then left an empty pickle that every later start of
every command loaded and died on (EOFError). Each damage below is put in
place before each command, and each command runs as a real process.
"""

import os
import pickle
import subprocess
import sys
import time

import pytest
from support.config import file_printer, service, write
from support.config import kiosk_config as kiosk_config_doc
from support.kiosk_process import clean_env, start_kiosk
from test_durable import placement_problems, trace

from kiosk import escpos_cache

DAMAGES = {
    "empty": lambda good: b"",  # python-escpos killed between open("wb") and pickle.dump
    "truncated": lambda good: good[: len(good) // 2],  # killed mid-dump, or a card that lost the tail
    "garbage": lambda good: b"\x00\xff not a pickle \xfe" * 64,
    "not_a_database": lambda good: pickle.dumps({"profiles": "default"}, protocol=2),
}
LOBBY_FACTORY = ("import sys; from lobby import create_app; "
                 "app = create_app({'CONFIG_PATH': sys.argv[1]}); print(app.config['LOBBY'].port)")


def env_for(tmp_path) -> dict:
    # Its own XDG cache (a first start's cache lives there) and no KIOSK_* overrides from the caller.
    return clean_env(XDG_CACHE_HOME=str(tmp_path / "xdg"))


def kiosk_config(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "mqtt.secret").write_text("s3cret\n")
    doc = kiosk_config_doc(data_dir, [service("A", 20)], printer=file_printer(data_dir),
                           buttons={"backend": "keyboard"}, mqtt={"password_file": f"{data_dir}/mqtt.secret"},
                           targets=[{"name": "gateway", "kind": "tcp", "role": "gateway", "host": "127.0.0.1",
                                     "port": 9}])
    return write(tmp_path / "kiosk.toml", doc), data_dir


def run_kiosk_until_ready(config_path, env) -> str:
    """Start ``kiosk run``, wait until it is ready, close stdin; the log it wrote."""
    kiosk = start_kiosk(config_path, env=env, ready=False)
    ready = kiosk.settle(60)
    kiosk.close_input()
    status = kiosk.end(30)
    log = kiosk.log(tail=None)
    assert status == 0 and ready and '"msg": "ready"' in log, log[-3000:]
    return log


def commands(config_path) -> dict:
    c = str(config_path)
    return {
        "kiosk status": [sys.executable, "-m", "kiosk", "status", "--config", c],
        "kiosk check-config": [sys.executable, "-m", "kiosk", "check-config", c],
        "kiosk quota set": [sys.executable, "-m", "kiosk", "quota", "set", "A", "today", "25", "--config", c],
        "edge-agent outages": [sys.executable, "-m", "edge_agent", "--config", c, "outages"],
        "lobby app factory": [sys.executable, "-c", LOBBY_FACTORY, c],
    }


def assert_whole(path) -> None:
    with open(path, "rb") as f:
        data = pickle.load(f)
    assert isinstance(data, dict) and "default" in data["profiles"], f"{path} is not a printer database"


@pytest.fixture
def started(tmp_path):
    """A data dir after the kiosk's first and second start: its cache holds a whole pickle."""
    config_path, data_dir = kiosk_config(tmp_path)
    env = env_for(tmp_path)
    run_kiosk_until_ready(config_path, env)  # first start: ledger, key, data_dir/cache
    subprocess.run(commands(config_path)["kiosk check-config"], env=env, check=True, capture_output=True)
    from edge_agent.outages import OutageLog

    (data_dir / "agent").mkdir()
    OutageLog(str(data_dir / "agent" / "outages.sqlite3")).close()  # so `edge-agent outages` has a log to show
    cache = escpos_cache.pickle_path(str(data_dir / "cache"))
    assert_whole(cache)
    return config_path, cache, env


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_every_command_starts_over_a_damaged_escpos_cache(started, damage):
    config_path, cache, env = started
    with open(cache, "rb") as f:
        good = f.read()
    runs = {"kiosk run": None, **commands(config_path)}
    for name, argv in runs.items():
        with open(cache, "wb") as f:
            f.write(DAMAGES[damage](good))
        if argv is None:
            log = run_kiosk_until_ready(config_path, env)
        else:
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{name} over a {damage} cache: {result.stderr[-3000:]}"
            log = result.stderr
        assert cache in log and "rebuilding it" in log, f"{name} did not say it rebuilt {cache}: {log[-2000:]}"
        assert_whole(cache)


def test_first_start_over_a_damaged_user_cache(tmp_path):
    """Before data_dir/cache exists the first start uses the user's cache dir: the same rule holds there."""
    config_path, _ = kiosk_config(tmp_path)
    env = env_for(tmp_path)
    cache = escpos_cache.pickle_path(str(tmp_path / "xdg" / "antrean"))
    os.makedirs(os.path.dirname(cache))
    with open(cache, "wb") as f:
        f.write(b"")
    run_kiosk_until_ready(config_path, env)
    assert_whole(cache)


def test_escpos_cache_is_placed_whole_and_flushed(tmp_path):
    """The pickle is never written in place (python-escpos's own way), and its name reaches the disk."""
    config_path, data_dir = kiosk_config(tmp_path)
    (data_dir / "cache").mkdir()
    calls = trace(tmp_path, commands(config_path)["kiosk check-config"], env=env_for(tmp_path))
    cache = escpos_cache.pickle_path(str(data_dir / "cache"))
    assert placement_problems(calls, cache) == []
    assert_whole(cache)


def test_cache_written_while_the_clock_is_behind_is_not_rebuilt_at_every_start(tmp_path, monkeypatch):
    """A Pi without an RTC can boot before python-escpos's install date; python-escpos would then
    find its pickle older than its database and rewrite it in place at every start."""
    database = tmp_path / "capabilities.json"
    database.write_bytes(open(escpos_cache._database_path(), "rb").read())
    installed = time.time() + 30 * 86400  # the clock is a month behind the install
    os.utime(database, (installed, installed))
    monkeypatch.setenv(escpos_cache.DATABASE_ENV, str(database))
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    assert escpos_cache.ensure(str(cache_dir))
    made = os.stat(escpos_cache.pickle_path(str(cache_dir)))
    assert made.st_mtime >= installed  # python-escpos's own test for a current pickle
    assert escpos_cache.ensure(str(cache_dir))
    assert os.stat(escpos_cache.pickle_path(str(cache_dir))).st_ino == made.st_ino  # kept, not rebuilt
