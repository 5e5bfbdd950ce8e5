"""The pages work under the Content-Security-Policy every response carries: Chromium reports no
violation while drawing the host page (and the other pages), so the policy costs nothing."""
import pytest

from fleet.inventory.models import Device
from tests.accounts.fleet_data import a_violation, import_capture
from tests.accounts.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def csp_page(browser, live_server, users):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    page = context.new_page()
    page.violations = []
    page.on("console", lambda m: page.violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: page.violations.append(f"page error: {e}"))
    yield page
    context.close()


def _login(page, username):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_load_state("networkidle")


def test_the_host_page_draws_without_any_csp_violation(csp_page, capture):
    host = import_capture(capture("shared-bridge-group"))
    _login(csp_page, "user-viewer")
    response = csp_page.goto(f"/hosts/{host.hostname}/")
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    csp_page.wait_for_selector("#topology[data-state=ready]")
    assert csp_page.locator("[data-bdf]").count() == Device.objects.filter(host=host).count()
    csp_page.click(f'[data-bdf="{Device.objects.filter(host=host).order_by("bdf").last().bdf}"]')
    csp_page.wait_for_timeout(300)
    assert csp_page.violations == []


def test_the_other_pages_load_without_any_csp_violation(csp_page, capture):
    host = import_capture(capture("shared-bridge-group"))
    a_violation(host, rule="pasid-quota", severity="medium", subject_kind="host", subject_id=host.hostname)
    _login(csp_page, "user-admin")
    for url in ("/", "/violations/", "/search/?q=driver:vfio-pci", f"/hosts/{host.hostname}/history/",
                "/api/docs/", "/api/v1/devices/", "/audit/", "/admin/", "/admin/policy/violation/"):
        csp_page.goto(url)
        csp_page.wait_for_load_state("networkidle")
        assert csp_page.violations == [], (url, csp_page.violations)


def test_the_api_docs_render_from_local_static_files(csp_page):
    _login(csp_page, "user-viewer")
    csp_page.goto("/api/docs/")
    csp_page.wait_for_selector(".swagger-ui .opblock", timeout=15000)
    assert csp_page.locator(".swagger-ui .opblock").count() >= 12
    assert csp_page.violations == []
