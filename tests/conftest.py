"""Fixtures every test may ask for; the harness itself is the package tests/support."""

import pytest
from support import config
from support.broker import Broker, Collector, base
from support.clock import JAKARTA
from support.kiosk_inproc import KioskFactory

from kiosk import config as kconfig
from kiosk.ledger import Ledger


@pytest.fixture
def make_config(tmp_path):
    """The desk kiosk's config (support.config.desk_config) in tmp_path, with ``extra`` TOML appended
    and each ``replace`` key (which must be there) replaced in its text."""
    def make(extra: str = "", replace: dict | None = None):
        text = config.toml(config.desk_config(tmp_path))
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        return kconfig.loads(text + extra, source="test")
    return make


@pytest.fixture
def kiosks():
    """Builds in-process kiosks (support.kiosk_inproc) and stops them after the test."""
    factory = KioskFactory()
    yield factory
    factory.close()


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto with the shipped config, on a free loopback port; killed after the test."""
    b = Broker(tmp_path / "broker").start()
    yield b
    b.kill()


@pytest.fixture
def watch(broker):
    """A technician subscribed to everything the test kiosk (kiosk-1) publishes."""
    c = Collector(broker, "technician", [f"{base()}/#"])
    yield c
    c.close()


@pytest.fixture
def ledger(tmp_path):
    """An empty ledger of the Serang office in tmp_path."""
    led = Ledger(str(tmp_path / "ledger.sqlite3"), "serang-kota", JAKARTA)
    yield led
    led.close()
