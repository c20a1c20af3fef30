"""The lobby page in a real headless Chromium, served by a real waitress on loopback."""

import os
import time

import pytest
from support.browser import page  # noqa: F401  (the fixture)
from support.liveness import kiosk_alive
from test_lobby_support import NOW, lobby_config, put_network, seed_ledger

from edge_agent.seam import AgentStore
from lobby import create_app
from lobby.serve import LobbyServer

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs")
EVENT_MS = 2000  # the page must follow a change within 2 s


def running_from(start):
    """A clock that starts at ``start`` (office open) and runs: staleness is judged live."""
    offset = start.timestamp() - time.time()
    return lambda: time.time() + offset


def put(app, outage: bool, age_s: float = 0.0) -> None:
    """network.json as the agent writes it, ``age_s`` old by the app's clock."""
    put_network(app.config["LOBBY"].agent_data_dir, outage, written_at=app.config["CLOCK"]() - age_s)


@pytest.fixture
def served(make_config):
    kiosk = lobby_config(make_config)
    seed_ledger(kiosk, 2)
    app = create_app({"KIOSK": kiosk, "SECRET_KEY": "browser-test", "CLOCK": running_from(NOW)})
    put(app, outage=False)
    server = LobbyServer(app).start()
    with kiosk_alive(kiosk.data_dir):
        yield app, server
    server.stop()


def test_banner_follows_network_state(page, served):  # noqa: F811
    app, server = served
    page.goto(server.url + "/")
    page.wait_for_selector("[data-code=A][data-state=available]", timeout=EVENT_MS)
    assert page.is_hidden("#banner") and page.is_hidden("#stale")
    page.screenshot(path=os.path.join(DOCS, "lobby-normal.png"))
    put(app, outage=True)
    page.wait_for_selector("#banner", state="visible", timeout=EVENT_MS)
    assert "terhenti sejak 06:00 karena gangguan jaringan pusat" in page.text_content("#banner-text")
    assert page.text_content("#banner-valid") == "Nomor antrean yang sudah diambil tetap berlaku."
    page.wait_for_selector("[data-code=A][data-state=stopped]", timeout=EVENT_MS)
    page.screenshot(path=os.path.join(DOCS, "lobby-outage.png"))
    put(app, outage=False)
    page.wait_for_selector("#banner", state="hidden", timeout=EVENT_MS)


def test_stale_notice_when_server_stops_and_recovery(page, served):  # noqa: F811
    app, server = served
    page.goto(server.url + "/")
    page.wait_for_selector("[data-code=A]", timeout=EVENT_MS)
    assert page.is_hidden("#stale")
    server.stop()
    page.wait_for_selector("#stale", state="visible", timeout=5000)  # two failed polls, 1 s apart
    assert "tidak terhubung ke server" in page.text_content("#stale")
    again = LobbyServer(app, port=server.port).start()
    try:
        page.wait_for_selector("#stale", state="hidden", timeout=5000)
    finally:
        again.stop()


def test_screen_started_before_the_server_shows_the_lobby_when_it_comes_up(page, served):  # noqa: F811
    """After a power cut the desktop may start Chromium before the agent serves the page. Chromium's
    own error page then retries by itself (hardware/lobby-screen relies on it): no script waits."""
    from playwright.sync_api import Error

    app, server = served
    server.stop()
    with pytest.raises(Error, match="ERR_CONNECTION_REFUSED"):
        page.goto(server.url + "/")
    again = LobbyServer(app, port=server.port).start()
    try:
        page.wait_for_selector("[data-code=A][data-state=available]", timeout=30_000)
    finally:
        again.stop()


def test_kiosk_down_banner_and_no_promise_when_the_kiosk_dies(page, make_config):  # noqa: F811
    kiosk = lobby_config(make_config)
    seed_ledger(kiosk, 2)
    app = create_app({"KIOSK": kiosk, "SECRET_KEY": "browser-test", "CLOCK": running_from(NOW)})
    put(app, outage=False)
    server = LobbyServer(app).start()
    try:
        with kiosk_alive(kiosk.data_dir):
            page.goto(server.url + "/")
            page.wait_for_selector("[data-code=A][data-state=available]", timeout=EVENT_MS)
            assert page.is_hidden("#kiosk-down")
        # The stand-in kiosk is gone, its lock dropped as the kernel drops a killed kiosk's.
        page.wait_for_selector("#kiosk-down", state="visible", timeout=EVENT_MS)
        assert page.text_content("#kiosk-down-text") == "Mesin antrean sedang tidak berfungsi, silakan hubungi petugas."
        assert page.text_content("#kiosk-down-valid") == "Nomor antrean yang sudah diambil tetap berlaku."
        page.wait_for_selector("[data-code=A][data-state=kiosk_down]", timeout=EVENT_MS)
        assert "Tersedia" not in page.text_content("#services")
        page.screenshot(path=os.path.join(DOCS, "lobby-kiosk-down.png"))
        with kiosk_alive(kiosk.data_dir):  # restarted
            page.wait_for_selector("#kiosk-down", state="hidden", timeout=EVENT_MS)
    finally:
        server.stop()


def test_stale_network_data_is_said(page, served):  # noqa: F811
    app, server = served
    put(app, outage=False, age_s=60)
    page.goto(server.url + "/")
    page.wait_for_selector("#stale", state="visible", timeout=EVENT_MS)
    assert "tidak terkini" in page.text_content("#stale")


def test_announcement_xss_renders_as_text(page, served):  # noqa: F811
    app, server = served
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server.url + "/")
    payload = '<img src=x onerror="alert(2)"><script>alert(1)</script>'
    AgentStore(app.config["LOBBY"].agent_data_dir).put("announcement", {"text": payload, "severity": "critical"})
    page.wait_for_selector("#announcement", state="visible", timeout=EVENT_MS)
    assert page.text_content("#announcement-text") == payload
    assert page.locator("#announcement img, #announcement script").count() == 0
    page.reload()
    page.wait_for_selector("#announcement", state="visible", timeout=EVENT_MS)
    assert page.text_content("#announcement-text") == payload and dialogs == []


def test_verify_page_real_and_tampered(page, served):  # noqa: F811
    app, server = served
    payload = seed_ledger(app.config["KIOSK"], 1)[0]
    page.goto(server.url + "/verify")
    page.fill("#code", payload)
    page.click("button[type=submit]")
    page.wait_for_selector("#result[data-verdict=genuine]", timeout=EVENT_MS)
    assert page.text_content("#t-number") == "A-003"
    page.fill("#code", payload[:-1] + ("A" if payload[-1] != "A" else "B"))
    page.click("button[type=submit]")
    page.wait_for_selector("#result[data-verdict=forged]", timeout=EVENT_MS)
    assert "PALSU" in page.text_content("#verdict")
