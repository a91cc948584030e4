"""What every browser test watches and how it takes screenshots."""

import re
from dataclasses import dataclass, field

from playwright.sync_api import expect

from tests.factories import PASSWORD

TIMEOUT_MS = 15_000
WIDE = {"width": 1400, "height": 1000}

# Runs in every page before its own scripts; the event carries directive, blocked URI and source.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__mizaniCspViolation({
    directive: e.effectiveDirective || e.violatedDirective,
    blocked: e.blockedURI,
    source: e.sourceFile,
    line: e.lineNumber,
    sample: e.sample,
    page: document.location.pathname,
  });
});
"""

# Wagtail's admin shows each user's avatar from www.gravatar.com unless
# WAGTAIL_GRAVATAR_PROVIDER_URL is None; our `img-src 'self'` blocks it. That is Wagtail's page
# furniture, not one of our pages: reported as a warning, never allowed by the policy.
WAGTAIL_GRAVATAR = re.compile(r"https?://(www\.)?gravatar\.com/avatar/")


def _is_wagtail_gravatar(text):
    return bool(WAGTAIL_GRAVATAR.search(text or ""))


@dataclass
class BrowserProblems:
    """What went wrong in the pages, as the browser saw it."""

    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    csp_violations: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)

    def watch(self, page, origin):
        page.expose_function("__mizaniCspViolation", lambda v: self.csp_violations.append(v))
        page.add_init_script(CSP_LISTENER)
        page.on("console", lambda message: self._console(message, page))
        page.on("pageerror", lambda error: self.page_errors.append(
            {"error": str(error), "page": page.url}))
        page.on("response", lambda response: self._response(response, origin))

    def _console(self, message, page):
        if message.type == "error":
            self.console_errors.append(
                {"text": message.text, "location": message.location, "page": page.url})

    def _response(self, response, origin):
        if response.url.startswith(origin) and response.status >= 400:
            self.failed_requests.append({"status": response.status, "url": response.url})

    def ours(self):
        """Problems caused by our pages: everything but Wagtail's own (see `wagtails`)."""
        found = {
            "console_errors": [e for e in self.console_errors
                               if not _is_wagtail_gravatar(e["text"])],
            "page_errors": self.page_errors,
            "csp_violations": [v for v in self.csp_violations
                               if not _is_wagtail_gravatar(v["blocked"])],
            "failed_requests": self.failed_requests,
        }
        return {name: items for name, items in found.items() if items}

    def wagtails(self):
        """CSP violations produced by Wagtail's admin itself: (directive, blocked URI)."""
        return sorted({(v["directive"], v["blocked"]) for v in self.csp_violations
                       if _is_wagtail_gravatar(v["blocked"])})


def screenshot(page, path):
    """The whole page. Wagtail's admin scrolls inside its layout, so `full_page` alone stops at
    the viewport: grow the viewport to the tallest scrolled content for the shot."""
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(document.documentElement.scrollHeight,
        ...Array.from(document.querySelectorAll("body *"))
            .filter((el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowY)
                            && el.scrollHeight > el.clientHeight)
            .map((el) => el.scrollHeight + el.getBoundingClientRect().top))""")
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(int(height) + 80, 6000)})
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)


def demo_password(username):
    """The password seed_demo gives its accounts."""
    return f"{username}-demo-2026!"


def log_in(page, origin, username, password=PASSWORD):
    page.goto(f"{origin}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page.locator("main")).to_be_visible()


def signed_in_page(browser, origin, problems, username, password=PASSWORD, *, viewport=WIDE):
    """A page of its own browser context (downloads accepted), watched for `problems`, signed in to
    the admin as `username`."""
    page = browser.new_context(viewport=viewport, accept_downloads=True).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems.watch(page, origin)
    log_in(page, origin, username, password)
    return page
