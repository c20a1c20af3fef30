"""The agent's sections of the kiosk's TOML file: [agent], [mqtt] and [[targets]].

The kiosk validates its own sections and passes these through; here they
get the same treatment: every key declared once with its type and default,
every problem reported at once with the value and the fix, and ``AGENT_*``
environment variables layered on top (``AGENT_MQTT_HOST``,
``AGENT_PROBE_INTERVAL_S`` for keys of [agent]).
"""

import os
import re
from dataclasses import dataclass

from common import tables
from common.tables import REQUIRED, Key
from edge_agent.errors import AgentConfigError
from edge_agent.outbox import MIN_BYTES as MIN_OUTBOX_BYTES
from kiosk.seam import Config, ConfigError, load_config

AGENT = {
    "data_dir": Key("str", ""),
    # Seconds, whole or not: a fraction is a real setting (a lab bench, a test compressing a day).
    "probe_interval_s": Key("float", 10),
    "health_interval_s": Key("float", 60),
    "publish_interval_s": Key("float", 300),
    "fail_threshold": Key("int", 3),
    "success_threshold": Key("int", 2),
    "outbox_max_bytes": Key("int", 5_000_000),
}
MQTT = {
    "enabled": Key("bool", True),
    "host": Key("str", "127.0.0.1"),
    "port": Key("int", 1883),
    "username": Key("str", ""),
    "password": Key("str", ""),
    "password_file": Key("str", ""),
    "tls": Key("bool", False),
    "ca_file": Key("str", ""),
    "cert_file": Key("str", ""),
    "key_file": Key("str", ""),
    "topic_prefix": Key("str", "antrean"),
    "keepalive_s": Key("int", 30),
    "ha_discovery": Key("bool", True),
    "ha_prefix": Key("str", "homeassistant"),
}
TARGET = {
    "name": Key("str", REQUIRED),
    "kind": Key("str", REQUIRED),
    "role": Key("str", "other"),
    "host": Key("str", ""),
    "port": Key("int", 0),
    "url": Key("str", ""),
    "query_name": Key("str", ""),
    "expect_status": Key("int", 200),
    "timeout_ms": Key("int", 0),  # 0: the kind's own (edge_agent.probes.DEFAULT_TIMEOUT_S)
    "count": Key("int", 0),  # icmp pings per round; 0: the kind's own (edge_agent.probes.DEFAULT_COUNT)
    "ca_file": Key("str", ""),
    "degraded_loss_percent": Key("int", 20),
    "degraded_rtt_ms": Key("int", 500),
}
KINDS = ("icmp", "tcp", "dns", "http")
ROLES = ("gateway", "dns", "central", "internet", "other")
INTERVALS = ("probe_interval_s", "health_interval_s", "publish_interval_s")
MAX_INTERVAL_S = 86_400  # a day; beyond it a timer's wait overflows long before anyone notices
# Both ends of every other number (the kiosk's are in its Keys' limits).
RANGES = {
    ("agent", "fail_threshold"): (1, 100),
    ("agent", "success_threshold"): (1, 100),
    ("mqtt", "keepalive_s"): (1, 65535),  # MQTT's own limit
}
TARGET_RANGES = {"port": (0, 65535), "expect_status": (100, 599), "timeout_ms": (0, 60_000), "count": (0, 50),
                 "degraded_loss_percent": (0, 100), "degraded_rtt_ms": (1, 60_000)}
MAX_OUTBOX_BYTES = 500_000_000  # the SD card holds the ledger too
# What each probe kind cannot work without, with an example for the message.
TARGET_NEEDS = {"icmp": (("host", '"192.168.1.1"'),), "tcp": (("host", '"10.1.2.3"'), ("port", "443")),
                "dns": (("host", '"192.168.1.1"'), ("query_name", '"siak.example.go.id"')),
                "http": (("url", '"https://siak.example.go.id/health"'),)}
ENV_PREFIX = "AGENT_"


@dataclass(frozen=True)
class AgentConfig:
    agent: dict
    mqtt: dict
    targets: tuple[dict, ...]
    data_dir: str
    topic_base: str


def load(path: str | None, env=None) -> tuple[Config, AgentConfig]:
    """The kiosk's config and the agent's, from one file; raise AgentConfigError listing every fault."""
    env = os.environ if env is None else env
    try:
        kiosk = load_config(path, env=env)
    except ConfigError as exc:
        raise AgentConfigError(exc.problems) from None
    return kiosk, from_kiosk_config(kiosk, env)


def from_kiosk_config(kiosk: Config, env=None) -> AgentConfig:
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in kiosk.other.items()}  # env must not edit kiosk
    problems = _apply_env(raw, env or {})
    agent = tables.check_table("agent", raw.get("agent", {}), AGENT, problems)
    mqtt = tables.check_table("mqtt", raw.get("mqtt", {}), MQTT, problems)
    targets = _check_targets(raw.get("targets", []), problems)
    _check_agent(agent, problems)
    _check_mqtt(mqtt, problems)
    _check_needs(kiosk, targets, problems)
    if problems:
        raise AgentConfigError(problems)
    data_dir = agent_data_dir(kiosk, env or {})
    base = f"{mqtt['topic_prefix']}/{kiosk.office_id}/{kiosk.id}"
    return AgentConfig(agent, mqtt, targets, data_dir, base)


def _apply_env(raw: dict, env) -> list[str]:
    problems = []
    for name in sorted(k for k in env if k.startswith(ENV_PREFIX)):
        rest = name[len(ENV_PREFIX):].lower()
        section, key = ("mqtt", rest[5:]) if rest.startswith("mqtt_") else ("agent", rest)
        if key not in (MQTT if section == "mqtt" else AGENT):
            problems.append(f"environment variable {name}={env[name]!r} names no agent key; use "
                            "AGENT_<KEY> for [agent] or AGENT_MQTT_<KEY> for [mqtt], or unset it")
            continue
        raw.setdefault(section, {})[key] = tables.env_value(env[name])
    return problems


def _check_targets(items, problems: list) -> tuple[dict, ...]:
    if not isinstance(items, list):
        problems.append(f"targets = {items!r} must be a list of tables; write each as [[targets]]")
        return ()
    targets = [tables.check_table(f"targets[{i}]", item, TARGET, problems) for i, item in enumerate(items)]
    for i, target in enumerate(targets):
        _check_target(f"targets[{i}]", target, problems)
    names = [t["name"] for t in targets if t["name"]]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"targets: name {name!r} is used twice; give each target its own name")
    return tuple(targets)


def _check_target(where: str, target: dict, problems: list) -> None:
    if target["name"] is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", target["name"]):
        problems.append(f"{where}.name = {target['name']!r} names MQTT fields; use lower-case letters, "
                        "digits, '-' or '_', e.g. \"central-ktp\"")
    for key, allowed in (("kind", KINDS), ("role", ROLES)):
        if target[key] is not None and target[key] not in allowed:
            problems.append(f"{where}.{key} = {target[key]!r} is not allowed; use one of {list(allowed)}")
    for key, example in TARGET_NEEDS.get(target["kind"], ()):
        if not target[key]:
            problems.append(f"{where}.{key} is not set but kind = {target['kind']!r} needs it; "
                            f"set it, e.g. {key} = {example}")
    if target["timeout_ms"] is not None and target["timeout_ms"] < 0:
        problems.append(f"{where}.timeout_ms = {target['timeout_ms']} is negative; set 1 or more, "
                        "or 0 for the kind's default")
    else:
        low, high = TARGET_RANGES["timeout_ms"]
        tables.check_range(f"{where}.timeout_ms", target["timeout_ms"], low, high, problems)
    for key, (low, high) in TARGET_RANGES.items():
        if key != "timeout_ms":
            tables.check_range(f"{where}.{key}", target[key], low, high, problems)


def _check_agent(agent: dict, problems: list) -> None:
    for key in INTERVALS:  # inf and nan were refused as numbers already
        value, default = agent[key], AGENT[key].default
        if value is not None and value <= 0:
            problems.append(f"agent.{key} = {value:g} is too small; set more than 0 seconds, e.g. {default} "
                            "(a fraction such as 0.5 is fine)")
        elif value is not None and value > MAX_INTERVAL_S:
            problems.append(f"agent.{key} = {value:g} is too large; set at most {MAX_INTERVAL_S} seconds "
                            f"(a day), e.g. {default}")
    for (section, key), (low, high) in RANGES.items():
        if section == "agent":
            tables.check_range(f"agent.{key}", agent[key], low, high, problems)
    size = agent["outbox_max_bytes"]
    if size is not None and size < MIN_OUTBOX_BYTES:
        problems.append(f"agent.outbox_max_bytes = {size} is too small; set {MIN_OUTBOX_BYTES} or more "
                        f"(default {AGENT['outbox_max_bytes'].default})")
    else:
        tables.check_range("agent.outbox_max_bytes", size, MIN_OUTBOX_BYTES, MAX_OUTBOX_BYTES, problems)
    if agent["data_dir"]:
        tables.check_dir("agent.data_dir", agent["data_dir"], problems)


def _check_mqtt(mqtt: dict, problems: list) -> None:
    if not mqtt["enabled"]:
        return
    if not mqtt["password"] and not mqtt["password_file"]:
        problems.append("mqtt.password_file is not set and there is no default password; create one with "
                        "mosquitto_passwd and set password_file (or set [mqtt] enabled = false)")
    if mqtt["tls"] and not mqtt["ca_file"]:
        problems.append("mqtt.tls = true needs mqtt.ca_file, the CA that signed the broker's certificate; "
                        'set it, e.g. ca_file = "/etc/antrean/ca.crt"')
    if bool(mqtt["cert_file"]) != bool(mqtt["key_file"]):
        problems.append("mqtt.cert_file and mqtt.key_file go together (a client certificate and its key); "
                        "set both or neither")
    if mqtt["port"] is not None and not 0 < mqtt["port"] < 65536:
        problems.append(f"mqtt.port = {mqtt['port']} is not a port; use 1883 (plain) or 8883 (TLS)")
    for (section, key), (low, high) in RANGES.items():
        if section == "mqtt":
            tables.check_range(f"mqtt.{key}", mqtt[key], low, high, problems)


def _check_needs(kiosk: Config, targets, problems: list) -> None:
    known = {t["name"] for t in targets}
    for service in kiosk.services:
        for name in service.needs_targets:
            if name not in known:
                problems.append(f"service {service.code!r} needs_targets names {name!r}, which is no "
                                f"[[targets]] name; use one of {sorted(known)} or add the target")


def agent_data_dir(kiosk: Config, env=None) -> str:
    """Where the agent keeps its files (AGENT_DATA_DIR, else [agent] data_dir, else <data_dir>/agent);
    the lobby page reads them there too."""
    env = os.environ if env is None else env
    agent = kiosk.other.get("agent", {})
    chosen = env.get(f"{ENV_PREFIX}DATA_DIR") or (agent.get("data_dir", "") if isinstance(agent, dict) else "")
    return chosen or os.path.join(kiosk.data_dir, "agent")


def mqtt_password(mqtt: dict) -> str:
    """The password, read from password_file at start so it never sits in the TOML file."""
    if mqtt["password"]:
        return mqtt["password"]
    try:
        with open(mqtt["password_file"], encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise AgentConfigError([f"mqtt.password_file {mqtt['password_file']!r} cannot be read "
                                f"({exc.strerror}); check the path and its permissions"]) from None
