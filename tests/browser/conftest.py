"""Logged-in pages of the session's Chromium (tests/conftest.py) against pytest-django's live server."""
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page(browser, live_server, django_user_model):
    """A logged-in page at 1280x800; fails the test on any page error or dialog."""
    from django.test import Client

    from django.contrib.auth.models import Group

    from fleet.accounts.roles import VIEWER

    user = django_user_model.objects.create_user("browser", password="pw")
    user.groups.add(Group.objects.get(name=VIEWER))
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    # Every page a browser test opens must also run under the Content-Security-Policy without a violation.
    context.add_init_script(CSP_LISTENER)
    pg = context.new_page()
    pg.errors = []
    pg.dialogs = []
    pg.csp = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.csp.append(m.text) if "Content Security Policy" in m.text else None)

    def on_dialog(dialog):
        pg.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    yield pg
    context.close()
    assert not pg.errors, pg.errors
    assert not pg.csp, pg.csp


# Runs before any page script; Playwright injects it outside the page's CSP.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`));
"""


def csp_violations(page) -> list[str]:
    """The securitypolicyviolation events the current document has fired so far."""
    return page.evaluate("window.__cspViolations || null")


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Saved under test-artifacts/. A full-page shot resizes the viewport for a moment (the page sees a resize
    event); pass full_page=False while the test still works on elements a resize could redraw."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
