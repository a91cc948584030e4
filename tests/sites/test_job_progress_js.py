"""static/mizani/job_progress.js in Chromium: a job page follows its job, and a failed poll (the
server busy or the network down) is retried and said, never left frozen. Skipped without Chromium."""

import json
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCRIPT = Path(__file__).resolve().parents[2] / "static" / "mizani" / "job_progress.js"
PAGE = """<!doctype html><html><body>
<section data-job-live data-job-status-url="/jobs/status/1/">
  <progress max="100" value="0" data-job-field="percent"></progress><span data-job-field="message"></span>
</section><script>{script}</script></body></html>"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed")


def test_a_failed_poll_is_retried_and_said_then_the_progress_goes_on():
    from playwright.sync_api import sync_playwright

    answers = [{"status": 503, "body": "busy"},
               {"status": 200, "body": json.dumps({"percent": 40, "message": "400 of 1,000 rows checked",
                                                   "finished": False})}]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("http://mizani.test/job/", lambda route: route.fulfill(
                status=200, content_type="text/html", body=PAGE.format(script=SCRIPT.read_text())))
            # The first answer fails; the last one is given from then on.
            page.route("http://mizani.test/jobs/status/1/", lambda route: route.fulfill(
                content_type="application/json", **(answers.pop(0) if len(answers) > 1 else answers[0])))
            page.goto("http://mizani.test/job/")

            page.wait_for_function("document.querySelector('[data-job-field=message]').textContent"
                                   ".startsWith('No news of the job')", timeout=5000)
            page.wait_for_function("document.querySelector('[data-job-field=message]').textContent"
                                   " === '400 of 1,000 rows checked'", timeout=8000)
            assert page.eval_on_selector("progress", "element => element.value") == 40
        finally:
            browser.close()

