"""The lobby app through Flask's test client: status JSON, verify, staff login, CSRF, limits, bad input."""

import html
import os
import re

import pytest
from support.liveness import kiosk_alive
from test_lobby_support import NOW, lobby_config, network_body, put_network, seed_ledger
from werkzeug.security import generate_password_hash

from edge_agent.seam import AgentStore, read_announcement, read_network, write_network
from kiosk.ledger import Ledger
from kiosk.seam import ConfigError
from kiosk.signing import ticket_payload
from lobby import config as lconfig
from lobby import create_app

PASSWORD = "rahasia-kantor-42"
PW_HASH = generate_password_hash(PASSWORD)


class Clock:
    def __init__(self, value: float):
        self.value = value

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def kiosk(make_config):
    return lobby_config(make_config, PW_HASH)


@pytest.fixture
def clock():
    return Clock(NOW.timestamp())


@pytest.fixture
def app(kiosk, clock):
    with kiosk_alive(kiosk.data_dir):  # the kiosk runs: the lobby may promise tickets
        yield create_app({"KIOSK": kiosk, "CLOCK": clock, "SECRET_KEY": "test", "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def agent_dir(app):
    return app.config["LOBBY"].agent_data_dir


def csrf_of(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def login(client, password=PASSWORD):
    return client.post("/staff/login", data={"password": password, "csrf": csrf_of(client, "/staff/login")})


# ------------------------------------------------------------------ config and network.json

def test_lobby_config_defaults_and_agent_dir(make_config):
    lobby = lconfig.from_kiosk_config(make_config())
    assert (lobby.host, lobby.port, lobby.stale_after_s, lobby.staff_password_hash) == ("127.0.0.1", 8080, 30, "")
    assert lobby.agent_data_dir.endswith("/agent")
    assert lobby.secret_key_file == os.path.join(lobby.agent_data_dir, lconfig.SECRET_FILE)


def test_lobby_config_reports_every_problem(make_config):
    kiosk = make_config('[lobby]\nport = 0\nstale_after_s = "x"\ncolour = 1\nstaff_password_hash = "plain"\n'
                        '[[lobby.nearest_offices]]\naddress = "Jl. 1"\n')
    with pytest.raises(ConfigError) as err:
        lconfig.from_kiosk_config(kiosk)
    text = "\n".join(err.value.problems)
    for part in ("lobby.port = 0", "lobby.stale_after_s = 'x'", "unknown key lobby.colour",
                 "hash-password", "lobby.nearest_offices[0].name is missing"):
        assert part in text


def test_write_network_is_atomic_and_readable(tmp_path):
    body = network_body(outage=True)
    write_network(str(tmp_path), body)
    read, written, problem = read_network(str(tmp_path))
    assert (read, problem) == (body, None) and written > 0
    assert os.listdir(tmp_path) == ["network.json"]  # no temporary file left behind


def test_unreadable_network_json_is_a_problem_not_a_crash(tmp_path):
    (tmp_path / "network.json").write_text("{half")
    body, _, problem = read_network(str(tmp_path))
    assert body is None and "cannot be read" in problem


# ------------------------------------------------------------------ /api/status

def test_status_normal(client, kiosk, agent_dir, clock):
    seed_ledger(kiosk, 2)
    put_network(agent_dir, outage=False, written_at=clock.value - 5)
    s = client.get("/api/status").get_json()
    assert s["office"]["name"] == "Disdukcapil Kota Serang"
    assert s["stale"] is False and s["outage"] is None
    a, b = s["services"]
    assert (a["state"], a["remaining"], a["text_id"]) == ("available", 1, "Tersedia hari ini: sisa 1 nomor")
    assert (b["state"], b["remaining"]) == ("available", 150)
    assert s["nearest_offices"] == [{"name": "Disdukcapil Kabupaten Serang", "address": "Jl. Veteran No. 1, Serang"}]


def test_status_full_names_the_next_day(client, kiosk, agent_dir, clock):
    seed_ledger(kiosk, 3)  # quota of A is 3
    put_network(agent_dir, outage=False, written_at=clock.value)
    a = client.get("/api/status").get_json()["services"][0]
    assert a["state"] == "full" and a["next_free_day"] == "2026-11-24"
    assert "Selasa, 24 November 2026" in a["text_id"]


def test_status_outage_banner(client, kiosk, agent_dir, clock):
    seed_ledger(kiosk, 1)
    put_network(agent_dir, outage=True, written_at=clock.value)
    s = client.get("/api/status").get_json()
    assert s["outage"]["text_id"] == ("Layanan Perekaman e-KTP terhenti sejak 06:00 karena gangguan jaringan pusat.")
    assert s["outage"]["tickets_valid_id"] == "Nomor antrean yang sudah diambil tetap berlaku."
    assert (s["outage"]["cause"], s["outage"]["since_time"], s["outage"]["services"]) == ("central", "06:00", ["A"])
    a, b = s["services"]
    assert a["state"] == "stopped" and a["text_id"] == "Terhenti sejak 06:00 karena gangguan jaringan"
    assert b["state"] == "available"


def test_status_maintenance_until(client, kiosk, agent_dir, clock):
    body = network_body(outage=False)
    body["targets"]["central-ktp"].update(state="maintenance", maintenance_until="2026-11-23T05:00:00Z")
    body["verdict"]["services"][0].update(status="maintenance", blocked_by=["central-ktp"])
    write_network(agent_dir, body)
    a = client.get("/api/status").get_json()["services"][0]
    assert a["state"] == "maintenance" and a["text_id"] == "Sedang pemeliharaan sampai 12:00"


def test_status_stale_after_limit_and_missing(client, agent_dir, clock):
    s = client.get("/api/status").get_json()
    assert s["stale"] is True and s["data_as_of"] is None and "does not exist" in s["stale_reason"]
    put_network(agent_dir, outage=False, written_at=clock.value - 31)
    s = client.get("/api/status").get_json()
    assert s["stale"] is True and s["data_as_of_time"] == "08:59"
    clock.value -= 2
    assert client.get("/api/status").get_json()["stale"] is False


def test_status_without_ledger_says_so(client):
    s = client.get("/api/status").get_json()
    assert "does not exist yet" in s["counts_error"]
    assert {x["state"] for x in s["services"]} == {"unknown"}


def test_announcement_shown_until_it_ends(client, agent_dir, clock):
    AgentStore(agent_dir).put("announcement", {"text": "<script>alert(1)</script>", "severity": "warning",
                                               "until": "2026-11-23T10:00:00+07:00"})
    s = client.get("/api/status").get_json()
    assert s["announcement"]["text"] == "<script>alert(1)</script>" and s["announcement"]["until_time"] == "10:00"
    clock.value += 3600
    assert client.get("/api/status").get_json()["announcement"] is None


def test_page_escapes_and_loads_nothing_external(client, agent_dir):
    AgentStore(agent_dir).put("announcement", {"text": "</script><script>alert(1)</script>", "severity": "info"})
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "</script><script>" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert client.get("/static/lobby.js").status_code == 200


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json()["ok"] is True


# ------------------------------------------------------------------ /verify

def test_verify_genuine(client, kiosk):
    payload = seed_ledger(kiosk, 1)[0]
    r = client.get("/verify", query_string={"code": payload})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "ASLI / GENUINE" in page and "A-001" in page and "Senin, 23 November 2026" in page


def test_verify_tampered(client, kiosk):
    payload = seed_ledger(kiosk, 1)[0]
    tampered = payload.replace(":A:20261123:1:", ":A:20261123:9:")
    r = client.get("/verify", query_string={"code": tampered})
    assert r.status_code == 422 and "PALSU" in r.get_data(as_text=True)


def test_verify_other_kiosks_key(client, kiosk):
    seed_ledger(kiosk, 1)
    other = ticket_payload(b"k" * 32, kiosk.office_id, kiosk.id, "A", NOW.date(), 1)
    r = client.get("/verify", query_string={"code": other})
    assert r.status_code == 422 and "BUKAN DARI KIOS INI" in r.get_data(as_text=True)


def test_verify_void_and_not_in_ledger(client, kiosk):
    payloads = seed_ledger(kiosk, 1)
    ledger = Ledger(os.path.join(kiosk.data_dir, "ledger.sqlite3"), kiosk.office_id, kiosk.tz)
    ledger.void("A", NOW.date(), 1, NOW)
    ledger.close()
    assert "DIBATALKAN" in client.get("/verify", query_string={"code": payloads[0]}).get_data(as_text=True)
    key = open(os.path.join(kiosk.data_dir, "ticket.key"), "rb").read()
    ghost = ticket_payload(key, kiosk.office_id, kiosk.id, "A", NOW.date(), 7)
    assert "TIDAK TERCATAT" in client.get("/verify", query_string={"code": ghost}).get_data(as_text=True)


def test_verify_escapes_the_code(client, kiosk):
    seed_ledger(kiosk, 1)
    page = client.get("/verify", query_string={"code": '"><script>x()</script>'}).get_data(as_text=True)
    assert "<script>x()" not in page and "PALSU" in page


def test_verify_without_key_does_not_create_one(client, kiosk):
    r = client.get("/verify", query_string={"code": "ANT1:A:B:C:D:E:F"})
    assert "TIDAK DAPAT DIPERIKSA" in r.get_data(as_text=True)
    assert not os.path.exists(os.path.join(kiosk.data_dir, "ticket.key"))


# ------------------------------------------------------------------ staff

def test_staff_disabled_without_hash(make_config, clock):
    app = create_app({"KIOSK": lobby_config(make_config, ""), "CLOCK": clock, "SECRET_KEY": "t"})
    r = app.test_client().get("/staff/login")
    assert r.status_code == 503 and "staff_password_hash" in r.get_data(as_text=True)


def test_staff_needs_login(client):
    assert client.get("/staff").headers["Location"].endswith("/staff/login")


def test_login_and_announce(client, agent_dir):
    assert login(client).status_code == 302
    token = csrf_of(client, "/staff")
    r = client.post("/staff/announce", data={"csrf": token, "text": "Loket 3 tutup", "severity": "warning",
                                             "until": "12:00"})
    assert r.status_code == 302
    saved = read_announcement(agent_dir)
    assert (saved["text"], saved["severity"], saved["until"]) == ("Loket 3 tutup", "warning",
                                                                   "2026-11-23T12:00:00+07:00")
    assert client.post("/staff/clear", data={"csrf": token}).status_code == 302
    assert read_announcement(agent_dir) is None


def test_post_without_csrf_changes_nothing(client, agent_dir):
    login(client)
    for token in ("", "forged"):
        r = client.post("/staff/announce", data={"csrf": token, "text": "x", "severity": "info"})
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert read_announcement(agent_dir) is None


def test_login_without_csrf_is_refused(client):
    client.get("/staff/login")
    assert client.post("/staff/login", data={"password": PASSWORD}).status_code == 400


@pytest.mark.parametrize("form, message", [
    ({"text": "", "severity": "info"}, "1 sampai 280"),
    ({"text": "x" * 281, "severity": "info"}, "281 karakter"),
    ({"text": "ok", "severity": "loud"}, "'loud' tidak dikenal"),
    ({"text": "ok", "severity": "info", "until": "25:00"}, "'25:00' tidak dikenal"),
    ({"text": "ok", "severity": "info", "until": "08:00"}, "sudah lewat"),
])
def test_bad_announcement_is_refused(client, agent_dir, form, message):
    login(client)
    r = client.post("/staff/announce", data={"csrf": csrf_of(client, "/staff"), **form})
    assert r.status_code == 400 and message in html.unescape(r.get_data(as_text=True))
    assert read_announcement(agent_dir) is None


def test_lower_quota(client, kiosk):
    seed_ledger(kiosk, 1)
    login(client)
    r = client.post("/staff/quota", data={"csrf": csrf_of(client, "/staff"), "service": "B", "quota": "40"})
    assert r.status_code == 302
    assert client.get("/api/status").get_json()["services"][1]["remaining"] == 40


@pytest.mark.parametrize("form, message", [
    ({"service": "Z", "quota": "1"}, "Layanan 'Z' tidak ada"),
    ({"service": "A", "quota": "dua"}, "bukan bilangan bulat"),
    ({"service": "A", "quota": "-1"}, "bukan bilangan bulat"),
    ({"service": "A", "quota": "5"}, "hanya dapat diturunkan"),
    ({"service": "A", "quota": "1"}, "2 tickets are already issued"),
])
def test_bad_quota_is_refused(client, kiosk, form, message):
    seed_ledger(kiosk, 2)
    login(client)
    r = client.post("/staff/quota", data={"csrf": csrf_of(client, "/staff"), **form})
    assert r.status_code == 400 and message in html.unescape(r.get_data(as_text=True))
    assert client.get("/api/status").get_json()["services"][0]["quota_today"] == 3


def test_failed_logins_are_limited(client, clock):
    for _ in range(5):
        assert login(client, "salah").status_code == 401
    r = login(client)  # even the right password waits
    assert r.status_code == 429 and "Coba lagi dalam" in r.get_data(as_text=True)
    assert 0 < int(r.headers["Retry-After"]) <= 300
    clock.value += 301
    assert login(client).status_code == 302


def test_hash_password_command(capsys, monkeypatch):
    import io

    from werkzeug.security import check_password_hash

    from lobby.__main__ import main

    monkeypatch.setattr("sys.stdin", io.StringIO("kata-sandi-panjang\n"))
    assert main(["hash-password"]) == 0
    assert check_password_hash(capsys.readouterr().out.strip(), "kata-sandi-panjang")
    monkeypatch.setattr("sys.stdin", io.StringIO("pendek\n"))
    assert main(["hash-password"]) == 2


def test_example_config_documents_and_validates_the_lobby_section():
    from kiosk.seam import load_config
    from lobby import config as lobby_config

    cfg = lobby_config.from_kiosk_config(load_config("hardware/kiosk.example.toml", env={}))
    text = open("hardware/kiosk.example.toml").read()
    for key in lobby_config.LOBBY:
        assert f"\n{key} = " in text or f"[[lobby.{key}]]" in text, key
    assert cfg is not None
