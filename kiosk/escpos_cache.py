"""python-escpos's capabilities cache, kept so that no power cut can stop the kiosk from starting.

At import python-escpos reads its printer database (``capabilities.json``)
and keeps a pickle of it in ``$ESCPOS_CAPABILITIES_PICKLE_DIR``. It opens
that pickle for writing *before* it parses the database, so a power cut in
those ~100 ms leaves an empty pickle, newer than the database: every later
import (the kiosk, ``kiosk status``, the agent, the lobby: all validate the
config through python-escpos) then dies on ``EOFError`` until someone
deletes the file.

So :func:`ensure` runs before python-escpos is imported. It loads the pickle
the way python-escpos will; one that does not load as a printer database
(empty, truncated, garbage) is discarded, and a missing, stale or discarded
one is rebuilt here, written with an atomic, flushed replace. python-escpos
then always finds a whole pickle and never writes its own.
"""

import importlib.util
import json
import logging
import os
import pickle
import platform

from common.durable import remove_orphans, write_atomic

log = logging.getLogger(__name__)

DATABASE_ENV = "ESCPOS_CAPABILITIES_FILE"  # python-escpos's own override of its database


def pickle_path(directory: str) -> str:
    """Where python-escpos looks for its pickle (its own naming: one per Python version)."""
    return os.path.join(directory, f"{platform.python_version()}.capabilities.pickle")


def ensure(directory: str) -> bool:
    """Leave a whole, current pickle in ``directory``; False if it cannot be written there."""
    path = pickle_path(directory)
    database = _database_path()
    try:
        remove_orphans(path)  # a start cut between writing the pickle and renaming it
    except OSError:
        pass  # a directory it cannot list is handled below, where it cannot write either
    problem = _problem(path, database)
    if problem is None:
        return True
    if problem != "missing":
        log.warning("python-escpos cache %s %s; rebuilding it", path, problem)
    try:
        _build(path, database)
    except OSError as exc:
        log.warning("cannot write python-escpos cache %s (%s); python-escpos will use a temporary "
                    "directory and every start re-reads its printer database", path, exc)
        _remove(path)  # python-escpos must not load the bad one either
        return False
    return True


def _problem(path: str, database: str) -> str | None:
    """What is wrong with the pickle at ``path``, or None when python-escpos can use it."""
    try:
        written = os.stat(path).st_mtime
    except FileNotFoundError:
        return "missing"
    if os.path.getmtime(database) > written:
        return f"is older than {database}"
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception as exc:  # noqa: BLE001  (anything a damaged pickle raises: EOF, bad opcode, ...)
        return f"cannot be loaded ({type(exc).__name__}: {exc})"
    if not _is_database(data):
        return "is not a python-escpos printer database"
    return None


def _build(path: str, database: str) -> None:
    data = _parse(database)
    if not _is_database(data):
        # A broken python-escpos install; its own import says so and falls back to a minimal profile.
        _remove(path)
        return
    write_atomic(path, pickle.dumps(data, protocol=2))
    # python-escpos re-parses (and rewrites in place) a pickle older than the database. A Pi
    # without a real-time clock can boot before the day python-escpos was installed.
    stamp = os.path.getmtime(database)
    if os.stat(path).st_mtime < stamp:
        os.utime(path, (stamp, stamp))


def _parse(database: str):
    with open(database, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)  # what python-escpos ships; 3x faster than its yaml parse
    except ValueError:
        import yaml  # an ESCPOS_CAPABILITIES_FILE in YAML, as python-escpos allows

        return yaml.safe_load(text)


def _is_database(data) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("profiles"), dict)
            and "default" in data["profiles"] and isinstance(data.get("encodings"), dict))


def _database_path() -> str:
    override = os.environ.get(DATABASE_ENV)
    if override:
        return override
    spec = importlib.util.find_spec("escpos")  # finds the package without importing it
    return os.path.join(spec.submodule_search_locations[0], "capabilities.json")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
