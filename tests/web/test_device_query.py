"""The search language parser is pure: literal strings in, terms out."""
from fleet.web.device_query import CLASS_ALIASES, Term, parse_device_query


def terms(text):
    q = parse_device_query(text)
    assert not q.errors, q.errors
    return set(q.terms)


def test_vendor_wildcard_and_vf_combine():
    assert terms("vendor:15b3 vf:yes") == {Term("vendor", ("15b3",)), Term("vf", ("yes",))}


def test_bare_vendor_device_with_star_is_an_id_term():
    assert terms("10de:*") == {Term("id", ("10de:*",))}


def test_negated_driver_and_class_name_and_role():
    got = terms("class:gpu driver:!vfio-pci role:gpu-passthrough")
    assert got == {Term("class", CLASS_ALIASES["gpu"]), Term("driver", ("vfio-pci",), True),
                   Term("role", ("gpu-passthrough",))}


def test_bare_full_and_short_bdfs_are_bdf_terms():
    assert terms("0000:02:00.0") == {Term("bdf", ("0000:02:00.0",))}
    assert terms("02:01.0") == {Term("bdf", ("0000:02:01.0",))}  # one parser (agent.bdf): the full form
    assert terms("BDF:0000:0A:00.1") == {Term("bdf", ("0000:0a:00.1",))}


def test_repeated_key_ors_its_values():
    assert terms("driver:vfio-pci driver:uio_pci_generic") == {Term("driver", ("vfio-pci", "uio_pci_generic"))}


def test_bare_class_name_and_bare_word():
    assert terms("nvme") == {Term("class", CLASS_ALIASES["nvme"])}
    assert terms("rack12") == {Term("host", ("rack12",))}


def test_invalid_terms_are_reported_and_the_rest_still_applies():
    q = parse_device_query("vendor:xyz group:abc driver:e1000")
    assert len(q.errors) == 2
    assert q.terms == [Term("driver", ("e1000",))]


def test_hex_is_lowercased_but_names_keep_their_case():
    assert terms("VENDOR:15B3 vm:Tenant-A") == {Term("vendor", ("15b3",)), Term("vm", ("Tenant-A",))}


def test_empty_query_is_empty():
    assert parse_device_query("   ").empty


def test_negations_of_one_field_merge_into_one_excluding_term():
    assert terms("driver:!vfio-pci driver:!none") == {Term("driver", ("vfio-pci", "none"), True)}
