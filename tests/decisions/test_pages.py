"""The capacity page and its exports, as a viewer sees them."""
import csv
import io

import pytest

from tests.decisions.states import gpu_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client, users):
    client.force_login(users["viewer"])
    return client


def test_capacity_page_lists_the_picks_and_the_counts(viewer):
    gpu_server()
    page = viewer.get("/capacity/", {"q": "class:gpu", "count": "2"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "0000:01:00.0" in html and "0000:02:00.0" in html and "0000:03:00.0" not in html  # two asked, fewest companions first
    assert 'id="capacity-picks"' in html and "js/pages/capacity.js" in html and "<script>" not in html
    assert "Free groups per host" in html


def test_capacity_exports_carry_companions(viewer):
    gpu_server()
    rows = list(csv.DictReader(io.StringIO(viewer.get("/capacity/export.csv", {"q": "class:gpu"}).content.decode())))
    assert [(r["device"], r["companions"]) for r in rows] == [
        ("0000:01:00.0", ""), ("0000:02:00.0", ""), ("0000:03:00.0", "0000:03:00.1")]
    body = viewer.get("/capacity/export.json", {"q": "class:gpu"}).json()
    assert body["free_groups"] == 3 and body["picks"][2]["devices"] == ["0000:03:00.0", "0000:03:00.1"]


def test_capacity_refuses_bad_counts_and_shows_query_errors(viewer):
    assert viewer.get("/capacity/", {"count": "0"}).status_code == 400
    assert viewer.get("/capacity/export.csv", {"q": "class:zzz"}).status_code == 400
    page = viewer.get("/capacity/", {"q": "class:zzz"})
    assert page.status_code == 200 and "class:zzz is neither" in page.content.decode()


def test_search_page_shows_group_size_and_accepts_group_terms(viewer):
    gpu_server()
    html = viewer.get("/search/", {"q": "host:gpu-a group:free class:gpu"}).content.decode()
    assert "Group size" in html and "0000:03:00.0" in html and "0000:04:00.0" not in html
