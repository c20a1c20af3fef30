"""The lobby's shape: its modules import one another without a cycle, import touches nothing, and
what a request opens (ledger, agent store) is closed when the request ends."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest
from test_lobby_support import lobby_config, seed_ledger

from lobby import create_app, db

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOBBY = ROOT / "lobby"
MODULES = sorted(f"lobby.{p.stem}" for p in LOBBY.glob("*.py") if p.stem != "__init__")


def lobby_imports(module: str) -> set[str]:
    """The lobby modules ``module`` imports anywhere in its source, at the top or inside a function."""
    tree = ast.parse((LOBBY / f"{module.split('.')[1]}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "lobby":
            found |= {f"lobby.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {name for name in found if name in MODULES and name != module}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` as the path round it, or None when the graph is a DAG."""
    done: set[str] = set()

    def visit(node, path):
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return None

    return next((c for c in (visit(m, []) for m in sorted(graph)) if c), None)


def test_lobby_modules_import_one_another_without_a_cycle():
    graph = {m: lobby_imports(m) for m in MODULES}
    assert "lobby.app" in graph and "lobby.staff" in graph
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycle({"lobby.app": {"lobby.staff"}, "lobby.staff": {"lobby.db", "lobby.app"}, "lobby.db": set()}) == \
        ["lobby.app", "lobby.staff", "lobby.app"]
    assert cycle({"lobby.app": {"lobby.staff"}, "lobby.staff": {"lobby.db"}, "lobby.db": set()}) is None


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone_and_reads_no_config(tmp_path, module):
    """In a fresh interpreter, first of all: a cycle would fail here with a partly initialised module,
    and a config read at import would fail on the missing file."""
    env = dict(os.environ, KIOSK_CONFIG=str(tmp_path / "missing.toml"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture
def app(make_config):
    return create_app({"KIOSK": lobby_config(make_config), "SECRET_KEY": "test", "TESTING": True})


def test_a_request_opens_each_handle_once_and_closes_it_at_teardown(app, monkeypatch):
    seed_ledger(app.config["KIOSK"], 1)
    closed = []
    with app.app_context():
        handles = [db.store(), db.ledger(), db.requests()]
        assert [db.store(), db.ledger(), db.requests()] == handles  # the same ones, opened once
        for handle in handles:
            monkeypatch.setattr(handle, "close", lambda h=handle, close=handle.close: (closed.append(h), close()))
        assert closed == []
    assert sorted(map(id, closed)) == sorted(map(id, handles))
    with app.app_context():
        assert db.store() is not handles[0]


def test_the_screen_opens_no_store(app):
    agent_dir = app.config["LOBBY"].agent_data_dir
    assert app.test_client().get("/api/status").status_code == 200
    assert not os.path.exists(os.path.join(agent_dir, "agent.sqlite3"))
