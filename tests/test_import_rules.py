"""The package seams, checked over the source's AST (docs/architecture.md, "Packages and seams").

Outside ``kiosk/`` only ``kiosk.seam`` may be imported; outside ``edge_agent/`` only its ``schema`` and
``seam``; ``common`` imports none of the project's packages; nothing but the agent's command line (which
serves the lobby in the agent's process) imports the lobby. A rule broken anywhere fails here with the file,
the line and the import, so a reader never comes to depend on a kiosk internal by accident.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# package -> where its source lives
PACKAGES = {
    "common": "common",
    "kiosk": "kiosk",
    "edge_agent": "edge_agent",
    "lobby": "lobby",
    "headquarters": "headquarters",
    "escpos_emulator": "hardware/escpos_emulator",
    "button_panel": "hardware/button_panel",
}
# what other packages may import of a package (a prefix matches the module and its submodules)
DOORS = {
    "kiosk": ("kiosk.seam",),
    "edge_agent": ("edge_agent.schema", "edge_agent.seam"),
    "lobby": (),
    "headquarters": (),
}
# importer package -> packages it must not import at all
NEVER = {
    "common": ("kiosk", "edge_agent", "lobby", "headquarters", "escpos_emulator", "button_panel"),
    "button_panel": ("kiosk", "edge_agent", "lobby", "headquarters"),  # firmware: it runs on the Pico alone
    # Headquarters reads only what the agents send (edge_agent.schema); it runs far from any kiosk.
    "headquarters": ("kiosk", "lobby", "escpos_emulator", "button_panel"),
}
# narrower doors for one importer: headquarters reads the agents' messages and nothing else of the agent
ONLY = {("headquarters", "edge_agent"): ("edge_agent.schema",)}
# the composition root: `edge-agent run` serves the lobby in its own process
MAY_IMPORT_LOBBY = {"edge_agent/cli.py"}
# The printer emulator stands in for the printer on the bench: it decodes with the kiosk's own ESC/POS
# decoder and loads its printer profiles, so a ticket is checked against what the kiosk meant to print.
SIDE_DOORS = {"escpos_emulator": ("kiosk.printer", "kiosk.layout")}


def imported_modules(tree: ast.AST, package: str):
    """(line, module) for every import in ``tree``; relative imports resolved against ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = f"{package}.{base}".rstrip(".")
            # `from kiosk import seam` imports kiosk.seam; `from kiosk.seam import X` imports kiosk.seam
            for alias in node.names:
                yield node.lineno, base if _is_attribute_import(base) else f"{base}.{alias.name}"


def _is_attribute_import(base: str) -> bool:
    return "." in base or base not in PACKAGES


def _opens(module: str, door: str) -> bool:
    return module == door or module.startswith(door + ".")


def broken_rule(importer: str, path: str, module: str) -> str | None:
    """Why ``importer`` (a package) at ``path`` may not import ``module``; None if it may."""
    target = module.split(".")[0]
    if target == importer or target not in PACKAGES:
        return None
    if target in NEVER.get(importer, ()):
        return f"{importer} imports nothing from {target}"
    if target == "lobby" and path not in MAY_IMPORT_LOBBY:
        return "only edge_agent/cli.py starts the lobby"
    doors = ONLY.get((importer, target)) or DOORS.get(target)
    if doors is not None:
        doors = doors + SIDE_DOORS.get(importer, ())
    if doors is not None and target != "lobby" and not any(_opens(module, d) for d in doors):
        return f"outside {target}/ import only {' or '.join(doors)}"
    return None


def violations(root: pathlib.Path) -> list[str]:
    found = []
    for package, folder in PACKAGES.items():
        for file in sorted((root / folder).rglob("*.py")):
            path = file.relative_to(root).as_posix()
            tree = ast.parse(file.read_text(encoding="utf-8"), path)
            for line, module in imported_modules(tree, package):
                why = broken_rule(package, path, module)
                if why:
                    found.append(f"{path}:{line}: imports {module}: {why}")
    return found


def test_every_package_keeps_to_the_seams():
    assert violations(ROOT) == []


@pytest.mark.parametrize("importer, source, expected", [
    ("edge_agent", "from kiosk.ledger import Ledger", "kiosk.ledger"),
    ("lobby", "from kiosk import ledger", "kiosk.ledger"),
    ("lobby", "import kiosk.clock", "kiosk.clock"),
    ("lobby", "from edge_agent.store import AgentStore", "edge_agent.store"),
    ("common", "from kiosk.seam import EventKind", "kiosk.seam"),
    ("kiosk", "from lobby import create_app", "lobby.create_app"),
    ("headquarters", "from kiosk.seam import EventKind", "kiosk.seam"),
    ("headquarters", "from edge_agent.outbox import Outbox", "edge_agent.outbox"),
    ("edge_agent", "from headquarters.store import open_store", "headquarters.store"),
    ("headquarters", "from edge_agent.seam import AgentStore", "edge_agent.seam"),
])
def test_a_planted_internal_import_is_named(tmp_path, importer, source, expected):
    for folder in PACKAGES.values():
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / PACKAGES[importer] / "reader.py").write_text(f"{source}\n")
    found = violations(tmp_path)
    assert len(found) == 1 and f"imports {expected}:" in found[0], found


@pytest.mark.parametrize("importer, source", [
    ("edge_agent", "from kiosk.seam import EventKind"),
    ("lobby", "from kiosk import seam"),
    ("lobby", "from edge_agent.seam import AgentStore"),
    ("kiosk", "from .ledger import Ledger"),
    ("kiosk", "from common.db import connect"),
    ("headquarters", "from edge_agent.schema import parse"),
])
def test_imports_through_a_door_pass(tmp_path, importer, source):
    for folder in PACKAGES.values():
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / PACKAGES[importer] / "reader.py").write_text(f"{source}\n")
    assert violations(tmp_path) == []
