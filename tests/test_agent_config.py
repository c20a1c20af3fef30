"""The agent's sections of the shared TOML file: same rules as the kiosk's."""

import pytest

from edge_agent import config as aconfig
from edge_agent.errors import AgentConfigError

AGENT_TOML = """
[agent]
probe_interval_s = 5
[mqtt]
password_file = "{secret}"
[[targets]]
name = "gateway"
kind = "icmp"
role = "gateway"
host = "127.0.0.1"
[[targets]]
name = "central-ktp"
kind = "tcp"
role = "central"
host = "127.0.0.1"
port = 443
"""


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "mqtt.secret"
    path.write_text("s3cret\n")
    return path


def load(make_config, secret, extra="", replace=None, env=None):
    text = AGENT_TOML.format(secret=secret)
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    kiosk = make_config(text + extra, replace={"button = \"GPIO17\"": 'button = "GPIO17"\n'
                                               'needs_targets = ["central-ktp"]'})
    return aconfig.from_kiosk_config(kiosk, env or {})


def problems(make_config, secret, **kwargs) -> str:
    with pytest.raises(AgentConfigError) as err:
        load(make_config, secret, **kwargs)
    return "\n".join(err.value.problems)


def test_defaults_and_topic_base(make_config, secret, tmp_path):
    cfg = load(make_config, secret)
    assert cfg.agent["probe_interval_s"] == 5 and cfg.agent["fail_threshold"] == 3
    assert cfg.topic_base == "antrean/serang-kota/kiosk-1"
    assert cfg.data_dir == str(tmp_path / "agent")
    assert aconfig.mqtt_password(cfg.mqtt) == "s3cret"
    assert [t["name"] for t in cfg.targets] == ["gateway", "central-ktp"]


def test_env_overrides(make_config, secret):
    cfg = load(make_config, secret, env={"AGENT_MQTT_HOST": "10.0.0.5", "AGENT_PROBE_INTERVAL_S": "30"})
    assert (cfg.mqtt["host"], cfg.agent["probe_interval_s"]) == ("10.0.0.5", 30)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"replace": {"[mqtt]\npassword_file": "[mqtt]\n# password_file"}}, "no default password"),
    ({"env": {"AGENT_MQTT_HOTS": "x"}}, "AGENT_MQTT_HOTS='x' names no agent key"),
    ({"replace": {'kind = "tcp"': 'kind = "udp"'}}, "targets[1].kind = 'udp' is not allowed"),
    ({"replace": {"port = 443\n": ""}}, "targets[1].port is not set but kind = 'tcp' needs it"),
    ({"replace": {'name = "gateway"': 'name = "central-ktp"'}}, "name 'central-ktp' is used twice"),
    ({"replace": {'name = "central-ktp"': 'name = "central"'}}, "needs_targets names 'central-ktp'"),
    ({"replace": {"probe_interval_s = 5": "probe_interval_s = 0"}}, "agent.probe_interval_s = 0 is too small"),
    ({"replace": {"probe_interval_s = 5": 'probe_interval_s = "5s"'}}, "agent.probe_interval_s = '5s'"),
    ({"replace": {"probe_interval_s = 5": "probe_interval_s = -0.5"}},
     "agent.probe_interval_s = -0.5 is too small; set more than 0 seconds, e.g. 10"),
    ({"replace": {"probe_interval_s = 5": "probe_interval_s = nan"}},
     "agent.probe_interval_s = nan is not a finite number, e.g. 10; fix the value"),
    ({"replace": {"probe_interval_s = 5": "publish_interval_s = inf"}},
     "agent.publish_interval_s = inf is not a finite number, e.g. 300"),
    ({"replace": {"probe_interval_s = 5": "probe_interval_s = 1e300"}},
     "agent.probe_interval_s = 1e+300 is too large; set at most 86400 seconds (a day), e.g. 10"),
    ({"env": {"AGENT_HEALTH_INTERVAL_S": "1" + "0" * 400}}, "agent.health_interval_s = 1000"),  # beyond a float
    ({"replace": {"probe_interval_s = 5": "outbox_max_bytes = 1000"}},
     "agent.outbox_max_bytes = 1000 is too small; set 1024 or more"),
    ({"replace": {"probe_interval_s = 5": "outbox_max_bytes = 9_000_000_000"}},
     "agent.outbox_max_bytes = 9000000000 is out of range; set 1024 to 500000000"),
    ({"replace": {"probe_interval_s = 5": "fail_threshold = 1_000_000"}},
     "agent.fail_threshold = 1000000 is out of range; set 1 to 100"),
    ({"replace": {"[mqtt]\n": "[mqtt]\nkeepalive_s = 0\n"}}, "mqtt.keepalive_s = 0 is out of range; set 1 to 65535"),
    ({"replace": {"port = 443": "port = 70000"}}, "targets[1].port = 70000 is out of range; set 0 to 65535"),
    ({"replace": {"port = 443": "port = 443\ndegraded_loss_percent = 101"}},
     "targets[1].degraded_loss_percent = 101 is out of range; set 0 to 100"),
    ({"replace": {"port = 443": "port = 443\ntimeout_ms = 100000000000000000000"}},
     "targets[1].timeout_ms = 100000000000000000000 is out of range; set 0 to 60000"),
    ({"replace": {"probe_interval_s = 5": 'data_dir = "/etc/passwd/agent"'}},
     "agent.data_dir = '/etc/passwd/agent' is under '/etc/passwd', which is not a directory; choose a directory"),
    ({"env": {"AGENT_DATA_DIR": "/etc/hostname"}},
     "agent.data_dir = '/etc/hostname' is not a directory"),
])
def test_bad_agent_config_names_key_value_and_fix(make_config, secret, kwargs, fragment):
    assert fragment in problems(make_config, secret, **kwargs)


def test_intervals_may_be_fractions_of_a_second(make_config, secret):
    """A compressed day (tests, a lab bench) sets intervals below one second; they stay numbers of seconds."""
    cfg = load(make_config, secret, replace={"probe_interval_s = 5": "probe_interval_s = 0.25\n"
                                                                      "health_interval_s = 1.5"},
               env={"AGENT_PUBLISH_INTERVAL_S": "0.75"})
    assert (cfg.agent["probe_interval_s"], cfg.agent["health_interval_s"], cfg.agent["publish_interval_s"]) == \
        (0.25, 1.5, 0.75)
    assert load(make_config, secret).agent["health_interval_s"] == 60  # whole numbers as before


def test_a_target_without_timeout_gets_its_kinds_own(make_config, secret):
    """What ships is what benchmarks/detection.py measures: the probes' per-kind timeouts."""
    from edge_agent.agent import target_from_config
    from edge_agent.probes import DEFAULT_TIMEOUT_S

    cfg = load(make_config, secret, replace={"port = 443\n": "port = 443\ntimeout_ms = 700\n"})
    gateway, central = (target_from_config(t) for t in cfg.targets)
    assert gateway.timeout_s == DEFAULT_TIMEOUT_S["icmp"] and central.timeout_s == 0.7
    first = 'host = "127.0.0.1"\n[[targets]]'
    assert "targets[0].timeout_ms = -1 is negative" in problems(
        make_config, secret, replace={first: first.replace("\n", "\ntimeout_ms = -1\n", 1)})


def test_unknown_agent_key(make_config, secret):
    text = problems(make_config, secret, replace={"probe_interval_s = 5": "probe_intreval_s = 5"})
    assert "unknown key agent.probe_intreval_s = 5; did you mean 'probe_interval_s'?" in text


def test_unreadable_password_file(make_config, secret, tmp_path):
    cfg = load(make_config, secret)
    with pytest.raises(AgentConfigError, match="cannot be read"):
        aconfig.mqtt_password({**cfg.mqtt, "password_file": str(tmp_path / "nope")})


def test_example_file_documents_every_agent_key():
    kiosk, cfg = aconfig.load("hardware/kiosk.example.toml", env={})
    text = open("hardware/kiosk.example.toml").read()
    for keys in (aconfig.AGENT, aconfig.MQTT):
        for key in keys:
            assert f"\n{key} = " in text, key
    for key in aconfig.TARGET:
        assert f"#   {key}" in text or f"{key}," in text or f", {key}" in text, key
    assert {t["role"] for t in cfg.targets} == {"gateway", "dns", "central", "internet"}


def test_agent_data_dir_from_the_environment_without_an_agent_table(make_config, secret, tmp_path):
    elsewhere = str(tmp_path / "elsewhere")
    cfg = load(make_config, secret, replace={"[agent]\nprobe_interval_s = 5\n": ""}, env={"AGENT_DATA_DIR": elsewhere})
    assert cfg.data_dir == cfg.agent["data_dir"] == elsewhere
    kiosk = make_config(AGENT_TOML.format(secret=secret))
    aconfig.from_kiosk_config(kiosk, {"AGENT_PROBE_INTERVAL_S": "30"})
    assert kiosk.other["agent"]["probe_interval_s"] == 5, "the environment edited the kiosk's config"


def test_edge_agent_run_with_a_bad_lobby_section_says_so_and_opens_nothing(secret, tmp_path):
    import subprocess
    import sys

    from support.config import BASE_TOML
    path = tmp_path / "kiosk.toml"
    path.write_text(BASE_TOML.format(data_dir=tmp_path) + AGENT_TOML.format(secret=secret) + "[lobby]\nport = 99999\n")
    result = subprocess.run([sys.executable, "-m", "edge_agent", "--config", str(path), "run"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "lobby.port = 99999" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "agent").exists()
