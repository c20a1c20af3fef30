"""The [lobby] section of the kiosk's TOML file, checked like the kiosk's and the agent's sections."""

import os
from dataclasses import dataclass

from common import tables
from common.tables import Key
from edge_agent.config import agent_data_dir  # one rule for where the agent keeps its files
from kiosk import config as kconfig
from kiosk.errors import ConfigError

LOBBY = {
    "host": Key("str", "127.0.0.1"),
    "port": Key("int", 8080),
    "stale_after_s": Key("int", 30),
    "nearest_offices": None,  # a list of {name, address} tables, checked by _offices
    "staff_password_hash": Key("str", ""),
    "secret_key_file": Key("str", ""),
    "second_language": Key("bool", False),
}
OFFICE_EXAMPLE = '[[lobby.nearest_offices]] name = "Disdukcapil Kab. Serang" address = "Jl. Veteran 1"'
SECRET_FILE = "lobby-secret.key"


class LobbyConfigError(ConfigError):
    """The [lobby] section is wrong; ``problems`` lists every fault with its fix."""


@dataclass(frozen=True)
class LobbyConfig:
    host: str
    port: int
    stale_after_s: int
    nearest_offices: tuple[dict, ...]
    staff_password_hash: str
    secret_key_file: str
    second_language: bool
    agent_data_dir: str


def load(path: str | None, env=None) -> tuple[kconfig.Config, LobbyConfig]:
    """The kiosk's config and the lobby's, from one file; raise ConfigError listing every fault."""
    kiosk = kconfig.load(path, env=os.environ if env is None else env)
    return kiosk, from_kiosk_config(kiosk)


def from_kiosk_config(kiosk: kconfig.Config) -> LobbyConfig:
    raw = kiosk.other.get("lobby", {})
    if not isinstance(raw, dict):
        raise LobbyConfigError([f"lobby = {raw!r} must be a table; write it as [lobby]"])
    problems: list[str] = []
    offices = _offices(raw, problems)
    simple = {k: v for k, v in LOBBY.items() if k != "nearest_offices"}
    values = tables.check_table("lobby", {k: v for k, v in raw.items() if k != "nearest_offices"}, simple,
                                 problems)
    _check_values(values, problems)
    if problems:
        raise LobbyConfigError(problems)
    agent_dir = agent_data_dir(kiosk)
    return LobbyConfig(values["host"], values["port"], values["stale_after_s"], offices,
                       values["staff_password_hash"],
                       values["secret_key_file"] or os.path.join(agent_dir, SECRET_FILE),
                       values["second_language"], agent_dir)




def _offices(raw: dict, problems: list) -> tuple[dict, ...]:
    items = raw.get("nearest_offices", [])
    if not isinstance(items, list):
        problems.append(f"lobby.nearest_offices = {items!r} must be a list of tables; write each as "
                        f"{OFFICE_EXAMPLE}")
        return ()
    keys = {"name": Key("str"), "address": Key("str", "")}
    offices = [tables.check_table(f"lobby.nearest_offices[{i}]", item, keys, problems)
               for i, item in enumerate(items)]
    for i, office in enumerate(offices):
        if office["name"] is not None and not office["name"].strip():
            problems.append(f"lobby.nearest_offices[{i}].name is empty; give the office's name")
    return tuple(offices)


def _check_values(values: dict, problems: list) -> None:
    port = values["port"]
    if port is not None and not 0 < port < 65536:
        problems.append(f"lobby.port = {port} is not a port; use 1 to 65535, e.g. 8080")
    stale = values["stale_after_s"]
    if stale is not None and stale < 1:
        problems.append(f"lobby.stale_after_s = {stale} is too small; set 1 or more (30 is three probe rounds)")
    pw_hash = values["staff_password_hash"]
    if pw_hash and ":" not in pw_hash:
        problems.append("lobby.staff_password_hash is not a password hash; make one with "
                        "`python -m lobby hash-password` and paste its output")
