"""Lobby page: state change to banner visible in real Chromium, page weight, /api/status under 20 screens.

    python benchmarks/lobby.py [--quick]

Serves the real app with waitress on 127.0.0.1, drives Debian's
/usr/bin/chromium through Playwright, and writes network.json the way the
agent does. Every request the page makes is recorded: any that leaves
127.0.0.1 is reported (the target is none).
"""

import argparse
import statistics
import tempfile
import threading
import time
import urllib.request

from _common import machine  # puts tests/ on sys.path
from support.browser import ARGS, CHROMIUM, VIEWPORT
from support.config import BASE_TOML
from support.liveness import kiosk_alive
from test_lobby_support import LOBBY_TOML, NOW, network_body, seed_ledger

from edge_agent.seam import write_network
from kiosk import config as kconfig
from lobby import create_app
from lobby.serve import LobbyServer


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def make_app(data_dir):
    kiosk = kconfig.loads(BASE_TOML.format(data_dir=data_dir) + LOBBY_TOML.format(hash=""))
    seed_ledger(kiosk, 2)
    offset = NOW.timestamp() - time.time()
    app = create_app({"KIOSK": kiosk, "SECRET_KEY": "bench", "CLOCK": lambda: time.time() + offset})
    return app, app.config["LOBBY"].agent_data_dir


def banner_delays(server, agent_dir, rounds):
    """Seconds from writing network.json to the banner being visible (and hidden again)."""
    from playwright.sync_api import sync_playwright

    shown, hidden, requests = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + "/")
        page.wait_for_selector("[data-code=A][data-state=available]", timeout=5000)
        weight = page.evaluate("performance.getEntriesByType('resource').reduce((s, e) => s + e.transferSize, 0)"
                               " + performance.getEntriesByType('navigation')[0].transferSize")
        for _ in range(rounds):
            for outage, out in ((True, shown), (False, hidden)):
                start = time.monotonic()
                write_network(agent_dir, network_body(outage))
                page.wait_for_selector("#banner", state="visible" if outage else "hidden", timeout=5000)
                out.append(time.monotonic() - start)
        browser.close()
    return shown, hidden, weight, requests


def poll_load(url, screens, seconds):
    """``screens`` pollers, each asking /api/status once a second like the page does."""
    times, errors, stop = [], [], threading.Event()

    def screen():
        while not stop.is_set():
            start = time.monotonic()
            try:
                urllib.request.urlopen(url, timeout=5).read()
                times.append(time.monotonic() - start)
            except OSError as exc:
                errors.append(str(exc))
            stop.wait(max(0.0, 1.0 - (time.monotonic() - start)))

    threads = [threading.Thread(target=screen) for _ in range(screens)]
    for t in threads:
        t.start()
    time.sleep(seconds)  # the load runs for a fixed time: this is the measurement window
    stop.set()
    for t in threads:
        t.join()
    return times, errors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, load_s = (3, 5) if args.quick else (10, 20)
    with tempfile.TemporaryDirectory(prefix="antrean-bench-lobby-") as data_dir:
        app, agent_dir = make_app(data_dir)
        write_network(agent_dir, network_body(False))
        server = LobbyServer(app).start()
        # The lobby promises tickets only while a kiosk runs: this process holds its lock and beats.
        try:
            with kiosk_alive(data_dir):
                shown, hidden, weight, requests = banner_delays(server, agent_dir, rounds)
                times, errors = poll_load(server.url + "/api/status", 20, load_s)
        finally:
            server.stop()
    external = [u for u in requests if not u.startswith(server.url)]
    print("# Lobby page\n")
    print(machine())
    print(f"Real headless Chromium ({CHROMIUM}) at 1920x1080, app on waitress (4 threads) on 127.0.0.1; "
          f"the page polls /api/status every 1 s.\n")
    print("| measure | n | p50 | p95 | max | target | result |")
    print("|---|---|---|---|---|---|---|")
    for name, values in (("network.json written -> banner visible", shown),
                         ("network.json written -> banner hidden", hidden)):
        ok = max(values) <= 2.0
        print(f"| {name} | {len(values)} | {statistics.median(values):.2f} s | {pct(values, 95):.2f} s | "
              f"{max(values):.2f} s | <= 2 s | {'PASS' if ok else 'MISS'} |")
    print(f"| /api/status with 20 screens polling (1/s each, {load_s} s) | {len(times)} | "
          f"{statistics.median(times) * 1000:.1f} ms | {pct(times, 95) * 1000:.1f} ms | "
          f"{max(times) * 1000:.1f} ms | (none given) | {len(errors)} errors |")
    print("\n| page weight (HTML + CSS + JS + API, transferred) | requests made | requests off 127.0.0.1 |")
    print("|---|---|---|")
    print(f"| {weight / 1024:.1f} KiB | {len(requests)} | {len(external)} (target 0) |")


if __name__ == "__main__":
    main()
