"""Browser tests: Playwright (sync API) driving Debian's Chromium against a live Django server.

Never `playwright install`: the browser is the distribution's package (`apt-get install chromium`).
Tests here are marked `browser` and skipped when /usr/bin/chromium is absent.
"""

import os
from pathlib import Path

import pytest
from django.core.servers.basehttp import WSGIServer

# Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls from the
# test body unless told that this is deliberate. Set only while a browser runs (see `browser`): left
# in the environment it would leak into other tests, and `check --deploy` run by them reports it
# as an error (async.E001).
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not found: install Debian's Chromium "
                                   "(apt-get install chromium) to run the browser tests")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


class SerialWSGIServer(WSGIServer):
    """One request at a time. The tests' in-memory SQLite database is one connection shared with
    the server; Django's threaded live server lets the browser's parallel requests (page, sprite,
    static files) use it at once, which fails with "database table is locked"."""

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections_override = connections_override


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, serving requests one by one (see SerialWSGIServer)."""
    from pytest_django.live_server_helper import LiveServer

    addr = (request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
            or "localhost")
    server = LiveServer(addr, start=False)
    server.thread.server_class = SerialWSGIServer
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module; Playwright (and its event loop) stops after the module."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
