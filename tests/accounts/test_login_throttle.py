"""Login throttling (per user name and address) and password validators (issue 10 item 10)."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from fleet.accounts.models import AuditEntry, LoginFailure
from tests.accounts.people import PASSWORD

pytestmark = pytest.mark.django_db
ADDR = "192.0.2.50"


def _login(client, password, *, username="user-viewer", addr=ADDR, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=addr)


def test_thirty_wrong_passwords_in_a_row_are_not_all_answered_as_normal_attempts(client, users):
    # What a guessing script does: 30 tries within seconds against one user.
    answers = [_login(client, f"guess-{i}").status_code for i in range(30)]
    limit = settings.FLEET_LOGIN_MAX_FAILURES
    assert answers == [200] * limit + [429] * (30 - limit)
    # Passwords were checked only for the first ones: one audited failure each, and the lockout once.
    assert AuditEntry.objects.filter(action="login_failed").count() == limit
    [locked] = AuditEntry.objects.filter(action="login_locked")
    assert locked.subject == "user user-viewer" and locked.remote_addr == ADDR


def test_the_refusal_says_why_and_when_to_retry_even_with_the_right_password(client, users):
    for i in range(settings.FLEET_LOGIN_MAX_FAILURES):
        _login(client, f"guess-{i}")
    response = _login(client, PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert 0 < int(response["Retry-After"]) <= settings.FLEET_LOGIN_LOCKOUT_SECONDS
    text = response.content.decode()
    assert "Too many failed logins" in text and "user-viewer" in text and "Try again in" in text


def test_the_lockout_is_per_address_and_ends_with_its_window(client, users):
    for i in range(settings.FLEET_LOGIN_MAX_FAILURES):
        _login(client, f"guess-{i}")
    assert _login(client, PASSWORD, addr="198.51.100.3").status_code == 302  # the user, from their own desk
    client.logout()
    assert _login(client, PASSWORD).status_code == 429
    LoginFailure.objects.update(at=LoginFailure.objects.latest("at").at - timedelta(seconds=settings.FLEET_LOGIN_LOCKOUT_SECONDS))
    assert _login(client, PASSWORD).status_code == 302
    assert not LoginFailure.objects.filter(remote_addr=ADDR).exists()  # a success starts the count again


def test_the_admin_login_is_throttled_too(client, users):
    answers = [_login(client, f"guess-{i}", username="user-admin", path="/admin/login/").status_code
               for i in range(settings.FLEET_LOGIN_MAX_FAILURES + 1)]
    assert answers[-1] == 429 and 429 not in answers[:-1]


def test_a_hostile_user_name_is_shown_as_text_on_the_refusal(client, db):
    name = "<script>alert(1)</script>"
    for i in range(settings.FLEET_LOGIN_MAX_FAILURES):
        _login(client, "x", username=name)
    response = _login(client, "x", username=name)
    assert response.status_code == 429 and "&lt;script&gt;" in response.content.decode() and name not in response.content.decode()


@pytest.mark.parametrize("password", ["short1", "password1234", "123456789012", "user-viewer-2026"])
def test_weak_passwords_are_refused_by_the_validators(password):
    user = get_user_model()(username="user-viewer")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_an_admin_cannot_set_a_weak_password_in_the_admin(client, users):
    client.force_login(users["admin"])
    response = client.post("/admin/auth/user/add/", {"username": "newbie", "password1": "password", "password2": "password",
                                                     "usable_password": "true"})
    assert response.status_code == 200 and not get_user_model().objects.filter(username="newbie").exists()
    validate_password(PASSWORD, get_user_model()(username="newbie"))  # the suite's own passphrase passes
