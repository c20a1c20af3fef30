"""A headless Chromium page for tests: Debian's /usr/bin/chromium driven by Playwright for Python.

Skips with the reason when either is missing, except under
ANTREAN_TEST_REQUIRE_SYSTEM (CI), where that is a failure.
"""

import importlib.util
import os
import shutil
import tempfile

import pytest

from support.system import need

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1920, "height": 1080}


@pytest.fixture
def page():
    need(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium")
    need(importlib.util.find_spec("playwright") is not None,
         "Playwright for Python is missing: pip install playwright (no `playwright install`; it uses Debian's)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="antrean-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS,
                                                            headless=True, viewport=VIEWPORT)
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
