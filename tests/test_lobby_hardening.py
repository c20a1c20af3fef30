"""The lobby against hostile or broken input: stored announcements and network.json it cannot trust,
form values int() chokes on, codes with odd characters, parallel login bursts, restarts, copied cookies.

The body limit is proven on a real waitress process in tests/test_lobby_limits.py.
"""

import copy
import html
import logging
import random
import sqlite3
import threading

import pytest
from support.liveness import kiosk_alive
from test_lobby import PASSWORD, PW_HASH, Clock, csrf_of, login
from test_lobby_support import LOBBY_TOML, NOW, lobby_config, network_body, seed_ledger

from edge_agent.seam import AgentStore, read_announcement, write_network
from lobby import create_app
from lobby.serve import LobbyServer

PAGES = ("/", "/api/status", "/healthz", "/staff")
PER_CLIENT, PER_ACCOUNT = 5, 10  # failed logins in 5 minutes, docs/lobby.md


@pytest.fixture
def kiosk(make_config):
    return lobby_config(make_config, PW_HASH)


@pytest.fixture
def clock():
    return Clock(NOW.timestamp())


def make_app(kiosk, clock, key="test"):
    return create_app({"KIOSK": kiosk, "CLOCK": clock, "SECRET_KEY": key, "TESTING": True})


@pytest.fixture
def app(kiosk, clock):
    with kiosk_alive(kiosk.data_dir):  # the kiosk runs: the lobby may promise tickets
        yield make_app(kiosk, clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def agent_dir(app):
    return app.config["LOBBY"].agent_data_dir


def store_raw(agent_dir: str, raw) -> None:
    """What a hand edit or an older agent may have left in the store, bypassing AgentStore.put."""
    AgentStore(agent_dir).close()
    with sqlite3.connect(f"{agent_dir}/agent.sqlite3") as db:
        db.execute("INSERT OR REPLACE INTO kv VALUES ('announcement', ?)", (raw,))


def all_pages_answer(client) -> dict:
    answers = {path: client.get(path) for path in PAGES}
    assert {p: r.status_code for p, r in answers.items()} == {"/": 200, "/api/status": 200, "/healthz": 200,
                                                              "/staff": 200}
    return answers


# ------------------------------------------------------------------ stored announcement

@pytest.mark.parametrize("value, shown, logged", [
    ({"text": "Loket tutup", "severity": "info", "until": "9999-12-31T23:59:00-12:00"},
     {"text": "Loket tutup", "until": None}, "'9999-12-31T23:59:00-12:00' is not between"),
    ({"text": "Loket tutup", "severity": "info", "until": "besok"}, {"text": "Loket tutup", "until": None},
     "'besok' is not an ISO 8601 time"),
    ({"text": "Loket \ud800 tutup", "severity": "warning"}, {"text": "Loket \ufffd tutup", "severity": "warning"},
     "holds lone surrogates"),
    ({"text": "Loket tutup", "severity": ["loud"]}, {"text": "Loket tutup", "severity": "info"},
     "severity ['loud'] is not one of"),
    ({"text": 5, "severity": "info"}, None, "text 5 is not a text"),
    ("garbage", None, "'garbage' is not an object"),
    ([1, 2], None, "[1, 2] is not an object"),
])
def test_any_stored_announcement_is_shown_or_skipped_never_a_500(client, agent_dir, caplog, value, shown, logged):
    AgentStore(agent_dir).put("announcement", value)
    login(client)
    with caplog.at_level(logging.WARNING):
        answers = all_pages_answer(client)
        all_pages_answer(client)  # a second poll logs nothing new
    got = answers["/api/status"].get_json()["announcement"]
    if shown is None:
        assert got is None
    else:
        assert {k: got.get(k) for k in shown} == shown
        assert html.escape(shown["text"]) in answers["/staff"].get_data(as_text=True)
    assert [r.getMessage() for r in caplog.records if logged in r.getMessage()] != []
    assert len([r for r in caplog.records if logged in r.getMessage()]) == 1


@pytest.mark.parametrize("raw", ["{half", "", "null", b"\xff\xfe{"])
def test_undecodable_announcement_is_skipped(client, agent_dir, caplog, raw):
    store_raw(agent_dir, raw if isinstance(raw, str) else raw.decode("latin-1"))
    if isinstance(raw, bytes):  # bytes that are not UTF-8 at all, as a damaged file may hold
        with sqlite3.connect(f"{agent_dir}/agent.sqlite3") as db:
            db.execute("UPDATE kv SET value = CAST(? AS TEXT) WHERE key = 'announcement'", (raw,))
    login(client)
    with caplog.at_level(logging.WARNING):
        answers = all_pages_answer(client)
    assert answers["/api/status"].get_json()["announcement"] is None
    assert any("announcement" in r.getMessage() and "not shown" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ network.json

BAD_NETWORK = {
    "targets is a list": lambda b: b.update(targets=["gateway"]),
    "since in year 9999": lambda b: b["targets"]["central-ktp"].update(since="9999-12-31T23:59:59-12:00"),
    "since garbage": lambda b: b["targets"]["central-ktp"].update(since={"x": 1}),
    "maintenance far": lambda b: (b["targets"]["central-ktp"].update(maintenance_until="9999-12-31T23:00:00-10:00"),
                                  b["verdict"]["services"][0].update(status="maintenance")),
    "services hold junk": lambda b: b["verdict"]["services"].extend([3, "A", None, {"code": ["A"]}]),
    "blocked_by unhashable": lambda b: b["verdict"]["services"][0].update(blocked_by=[["central-ktp"], {}]),
    "stopped_services an int": lambda b: b["verdict"].update(stopped_services=7),
    "cause a string": lambda b: b["verdict"].update(cause="central"),
    "cause code a list": lambda b: b["verdict"]["cause"].update(code=["central"]),
    "lone surrogate": lambda b: b["verdict"]["cause"].update(text="pusat \ud800"),
    "surrogate in a target name": lambda b: b["targets"].update({"x\udc00": {"since": "2026-11-23T06:00:00Z"}}),
}


@pytest.mark.parametrize("name", list(BAD_NETWORK))
def test_bad_network_json_shows_the_rest_and_logs_once(client, kiosk, agent_dir, caplog, name):
    seed_ledger(kiosk, 1)
    body = network_body(outage=True)
    BAD_NETWORK[name](body)
    write_network(agent_dir, body)
    login(client)
    with caplog.at_level(logging.WARNING):
        status = all_pages_answer(client)["/api/status"].get_json()
        all_pages_answer(client)
    assert status["stale"] is False and status["services"][1]["state"] == "available"
    problems = [r.getMessage() for r in caplog.records if "network.json" in r.getMessage()]
    assert problems and len(problems) == len(set(problems)), problems


def junk(rng: random.Random):
    return rng.choice([None, 0, -1, 10 ** 30, 1.5, float("nan"), True, "", "x", "\ud800", "9999-12-31T23:59:59-12:00",
                       "0001-01-01T00:00:00+14:00", [], [None], {}, {"a": [1]}, ["central-ktp"], "stopped"])


def mutate(body, rng: random.Random):
    """Replace one random node of ``body`` with junk."""
    node = body
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = rng.choice(keys)
        if isinstance(node[key], (dict, list)) and node[key] and rng.random() < 0.7:
            node = node[key]
            continue
        node[key] = junk(rng)
        return


def test_random_junk_in_network_json_never_gives_a_500(client, kiosk, agent_dir):
    seed_ledger(kiosk, 1)
    rng = random.Random(12)
    good = network_body(outage=True)
    for round_ in range(300):
        body = copy.deepcopy(good)
        for _ in range(rng.randint(1, 4)):
            mutate(body, rng)
        write_network(agent_dir, body)
        for path in ("/", "/api/status", "/healthz"):
            assert client.get(path).status_code == 200, (round_, path, body)


# ------------------------------------------------------------------ form fields and /verify

@pytest.mark.parametrize("value", ["²", "٣", "5" * 5000, "１２", "1_000", "+5", "1e3", "\x00"])
def test_quota_that_int_would_choke_on_is_a_400(client, kiosk, value):
    seed_ledger(kiosk, 2)
    login(client)
    r = client.post("/staff/quota", data={"csrf": csrf_of(client, "/staff"), "service": "A", "quota": value})
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 400 and "bukan bilangan bulat 0 sampai 999999" in page
    assert len(page) < 5000  # the message quotes the start of a long value, not all of it
    assert client.get("/api/status").get_json()["services"][0]["quota_today"] == 3


@pytest.mark.parametrize("code", ["ANT1:SERANG-KOTA:KIOSK-1:A:20261123:1:ÄÖÜ", "ANT1:A:B:C:D:E:\u0663",
                                  "ANT1:A:B:C:D:E:F\x07"])
def test_verify_odd_characters_is_forged_not_a_500(client, kiosk, code):
    seed_ledger(kiosk, 1)
    r = client.get("/verify", query_string={"code": code})
    assert r.status_code == 422 and "tidak ada di kode tiket Antrean" in r.get_data(as_text=True)


# ------------------------------------------------------------------ login limiter

def test_failed_logins_survive_a_restart(kiosk, clock):
    first = make_app(kiosk, clock).test_client()
    for _ in range(PER_CLIENT):
        assert login(first, "salah").status_code == 401
    restarted = make_app(kiosk, clock).test_client()
    r = login(restarted)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 300
    clock.value += 301
    assert login(restarted).status_code == 302


def test_failed_logins_are_limited_per_account_across_addresses(app, clock):
    def from_address(i):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = f"192.168.1.{i}"
        return c

    for i in range(PER_ACCOUNT):
        assert login(from_address(i), "salah").status_code == 401
    r = login(from_address(200))
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 300


def test_a_clock_set_back_does_not_lock_staff_out(app, clock):
    client = app.test_client()
    for _ in range(PER_CLIENT):
        login(client, "salah")
    clock.value -= 86400  # a restart with yesterday's time: those failures are "in the future"
    assert login(client).status_code == 302


def test_parallel_login_burst_gets_exactly_the_limit_of_checks(kiosk, clock):
    """Real waitress, 12 wrong passwords at once from one address: 5 are checked (401), 7 refused (429)."""
    import http.client
    import re
    import urllib.parse

    app = make_app(kiosk, clock)
    burst = 12
    server = LobbyServer(app, threads=burst).start()
    try:
        forms = []
        for _ in range(burst):  # each its own session, so each its own CSRF token
            conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
            conn.request("GET", "/staff/login")
            r = conn.getresponse()
            cookie = r.getheader("Set-Cookie").split(";")[0]
            token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode()).group(1)
            forms.append((conn, cookie, urllib.parse.urlencode({"csrf": token, "password": "salah"})))
        start, codes = threading.Barrier(burst), []

        def post(conn, cookie, body):
            start.wait()
            conn.request("POST", "/staff/login", body, {"Cookie": cookie,
                                                       "Content-Type": "application/x-www-form-urlencoded"})
            codes.append(conn.getresponse().status)

        threads = [threading.Thread(target=post, args=form) for form in forms]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.stop()
    assert sorted(codes) == [401] * PER_CLIENT + [429] * (burst - PER_CLIENT)


# ------------------------------------------------------------------ sessions

def cookie_of(client) -> str:
    return client.get_cookie("session").value


def test_logout_ends_the_session_for_a_copied_cookie(app, client):
    login(client)
    token = csrf_of(client, "/staff")
    copied = cookie_of(client)  # what a thief (or a shared phone's history) keeps
    assert client.post("/staff/logout", data={"csrf": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/staff").status_code == 302  # to the login page
    thief.set_cookie("session", copied)
    r = thief.post("/staff/announce", data={"csrf": token, "text": "x", "severity": "info"})
    assert r.headers.get("Location", "").endswith("/staff/login")
    assert read_announcement(app.config["LOBBY"].agent_data_dir) is None


def test_a_session_survives_a_restart_and_ends_after_eight_hours(kiosk, clock):
    client = make_app(kiosk, clock).test_client()
    login(client)
    copied = cookie_of(client)
    again = make_app(kiosk, clock).test_client()
    again.set_cookie("session", copied)
    assert again.get("/staff").status_code == 200
    clock.value += 8 * 3600 + 1
    assert again.get("/staff").status_code == 302


def test_login_needs_a_session_the_store_knows(app, client):
    """A cookie signed with the right key but an id the store never issued (the old {"staff": True}) is out."""
    login(client)
    forged = app.test_client()
    with forged.session_transaction() as sess:
        sess["staff"] = True
        sess["sid"] = "invented"
    assert forged.get("/staff").status_code == 302


# ------------------------------------------------------------------ body limit (Flask's own check)

def test_large_form_is_413_with_a_clear_message(client, agent_dir):
    login(client)
    r = client.post("/staff/announce", data={"csrf": csrf_of(client, "/staff"), "text": "x" * 100_000,
                                             "severity": "info"})
    assert r.status_code == 413 and "Permintaan terlalu besar" in r.get_data(as_text=True)
    assert read_announcement(agent_dir) is None


def test_store_that_cannot_be_opened_is_a_503_naming_it(make_config, clock, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    kiosk = make_config(f'[agent]\ndata_dir = "{blocker}"\n' + LOBBY_TOML.format(hash=PW_HASH))
    client = make_app(kiosk, clock).test_client()
    r = client.post("/staff/login", data={"password": PASSWORD, "csrf": csrf_of(client, "/staff/login")})
    assert r.status_code == 503 and str(blocker) in r.get_data(as_text=True)
    assert client.get("/api/status").status_code == 200


def test_a_store_made_before_the_login_tables_gains_them_and_keeps_its_announcement(tmp_path):
    """The store skips its schema script once every table is there (the lobby opens it per request);
    a store an older agent made (only ``kv``) still gets the tables that came later."""
    import sqlite3

    from edge_agent.seam import AgentStore

    old = sqlite3.connect(tmp_path / "agent.sqlite3")
    old.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    old.execute("INSERT INTO kv VALUES ('kiosk_event_cursor', '41')")
    old.commit()
    old.close()
    store = AgentStore(str(tmp_path))
    names = {row[0] for row in store._db.execute("SELECT name FROM sqlite_master")}
    assert {"kv", "login_attempts", "login_attempts_account", "staff_sessions"} <= names
    assert store.get("kiosk_event_cursor") == 41
