"""Strict queries on the read API: an unknown parameter or sort field is a 400 naming what the list takes."""
import pytest
from django.urls import reverse

from fleet.api.urls import router

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(client, django_user_model):
    from django.contrib.auth.models import Group

    from fleet.accounts.roles import VIEWER, roles_sync

    roles_sync()
    user = django_user_model.objects.create_user("strict-reader", password="pw-long-enough-1")
    user.groups.add(Group.objects.get(name=VIEWER))
    client.force_login(user)
    return client


@pytest.mark.parametrize("prefix,basename", [(p, b) for p, _, b in router.registry])
def test_every_list_refuses_an_unknown_parameter_and_names_its_own(reader, prefix, basename):
    url = reverse(f"api:{basename}-list")
    response = reader.get(url, {"hostnmae": "x"})
    assert response.status_code == 400, prefix
    message = response.json()["hostnmae"][0]
    assert "not a parameter" in message and "page_size" in message
    assert reader.get(url, {"page_size": "5"}).status_code == 200


def test_an_unknown_sort_field_is_refused_and_a_known_one_sorts(reader):
    url = reverse("api:host-list")
    bad = reader.get(url, {"ordering": "-nosuch"})
    assert bad.status_code == 400 and "hostname" in bad.json()["ordering"][0]
    assert reader.get(url, {"ordering": "-hostname"}).status_code == 200
