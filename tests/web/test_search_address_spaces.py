"""Search terms over address spaces (`backend:`, `as:`), on real captures: expectations from the holders' own
logs (6.12 iommufd captures) and ps.txt (6.1 legacy capture); bounded like every term."""
import pytest

from fleet.inventory.models import AddressSpace, Attachment, Device, Host
from fleet.web.device_query import QueryTooLarge, parse_device_query
from fleet.web.selectors.search import devices_matching
from tests.accounts.fleet_data import import_capture
from tests.inventory.documents import ps_holders
from tests.iommufd_captures import iommufd_capture, iommufd_contexts  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(capture, iommufd_capture):
    """host name -> (root, backend) of three imported captures: two on iommufd, one legacy."""
    out = {}
    for root, backend in ((iommufd_capture("iommufd-two-devices-one-ioas"), "iommufd"), (iommufd_capture("iommufd-vm"), "iommufd"),
                          (capture("shared-group-all-vfio"), "legacy")):
        out[import_capture(root).hostname] = (root, backend)
    return out


def found(text):
    query = parse_device_query(text)
    assert not query.errors, query.errors
    return set(devices_matching(query).values_list("host__hostname", "bdf"))


def truth(fleet):
    """(host, bdf) -> (backend, devices in the same address space) from the logs and ps.txt."""
    out = {}
    for host, (root, backend) in fleet.items():
        spaces = ([c.bound for c in iommufd_contexts(root).values()] if backend == "iommufd"
                  else [h["devices"] for h in ps_holders(root).values()])
        for bound in spaces:
            for bdf in bound:
                out[(host, bdf)] = (backend, len(bound))
    return out


def test_backend_terms_find_the_devices_bound_on_each_path(fleet):
    want = truth(fleet)
    assert found("backend:iommufd") == {k for k, (b, _) in want.items() if b == "iommufd"}
    assert found("backend:legacy") == {k for k, (b, _) in want.items() if b == "legacy"}
    assert found("backend:legacy backend:iommufd") == set(want)
    everything = set(Device.objects.values_list("host__hostname", "bdf"))
    assert found("backend:!iommufd") == everything - found("backend:iommufd")


def test_as_shared_is_an_address_space_mapping_more_than_one_device(fleet):
    want = truth(fleet)
    assert found("as:shared") == {k for k, (_, n) in want.items() if n > 1}
    assert found("as:shared")  # two devices in one IOAS, and the legacy VM's two-device group
    assert found("as:*") == set(want)
    assert found("as:none") == set(Device.objects.values_list("host__hostname", "bdf")) - set(want)


def test_a_device_owned_by_another_vm_makes_the_space_that_maps_it_shared(fleet):
    root, _ = next(v for v in fleet.values() if len(iommufd_contexts(v[0]) if v[1] == "iommufd" else ()) == 1)
    (host,) = [h for h, v in fleet.items() if v[0] == root]
    (space,) = AddressSpace.objects.filter(host__hostname=host)
    (att,) = Attachment.objects.filter(host__hostname=host, space=space.key, device_bdf__isnull=False)
    assert (host, att.device_bdf) not in found("as:shared")
    Device.objects.filter(host__hostname=host, bdf=att.device_bdf).update(owner_vm="someone-else")
    assert (host, att.device_bdf) in found("as:shared")


@pytest.mark.parametrize("text", ["backend:evil", "backend:", "as:%", "as:shared'--", "backend:iommufd%00"])
def test_hostile_values_are_errors_not_queries(text):
    query = parse_device_query(text)
    assert query.errors and not query.terms


def test_an_overlong_value_is_refused_whole():
    with pytest.raises(QueryTooLarge):
        parse_device_query("as:" + "x" * 300)


def test_the_statement_does_not_grow_with_the_address_spaces_hosts_sent():
    host = Host.objects.create(hostname="flood")
    def shape():
        return {t: devices_matching(parse_device_query(t)).order_by().values_list("id").query.sql_with_params()[0]
                for t in ("backend:iommufd backend:legacy", "as:shared", "as:!none", "backend:!legacy as:shared")}
    before = shape()
    AddressSpace.objects.bulk_create(AddressSpace(host=host, key=f"{n}:3", pid=n, fd=3, kind="iommufd", backend="iommufd")
                                     for n in range(2000))
    Attachment.objects.bulk_create(Attachment(host=host, key=f"{n}:3/device/0000:00:00.{n % 8}", space=f"{n}:3",
                                              device_bdf=f"0000:00:00.{n % 8}", certainty="inferred") for n in range(2000))
    after = shape()
    assert after == before and all(len(sql) < 3000 for sql in after.values())
