"""The capacity finder page in Chromium, by keyboard only: type a query, find, copy a pick's pre-flight request."""
import json

import pytest
from playwright.sync_api import expect

from tests.decisions.states import gpu_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_capacity_form_and_copy_button_work_from_the_keyboard(page):
    gpu_server()
    page.goto("/capacity/")
    page.focus("#capacity-q")
    page.keyboard.press("Control+A")
    page.keyboard.type("class:gpu host:gpu-a")
    page.keyboard.press("Tab")
    page.keyboard.type("3")  # Tab selected the count box's 4: three picks asked
    page.keyboard.press("Enter")
    page.wait_for_selector("table.results")
    assert page.locator("table.results tbody tr").count() == 3
    page.locator("button[data-pick='2']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#capacity-copied")).not_to_have_text("")  # not wait_for_function: a string eval breaks the CSP
    status = page.locator("#capacity-copied").text_content()
    if status.startswith("{"):  # no clipboard in this browser: the request is shown as text instead
        assert json.loads(status)["pick"] == {"host": "gpu-a", "devices": ["0000:03:00.0", "0000:03:00.1"]}
    else:
        assert "copied" in status
    assert page.csp == []
