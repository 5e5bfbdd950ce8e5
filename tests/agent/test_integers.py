"""The one integer parser: ASCII digits in the format the file's writer uses, nothing else."""
import pytest

from agent.integers import parse_bool01, parse_int
from agent.paths import Root
from agent.sysfs import Reader


@pytest.mark.parametrize("text, form, want", [
    ("7\n", {}, 7),
    ("0", {}, 0),
    ("-1", {}, None),
    ("-1\n", {"signed": True}, -1),
    ("--1", {"signed": True}, None),
    ("+1", {}, None),
    (None, {}, None),
    ("", {}, None),
    ("²", {}, None),            # str.isdigit() says yes, int() raises
    ("1²", {}, None),
    ("٣", {}, None),            # int() reads Arabic-Indic 3 as 3
    ("３", {}, None),           # and full-width 3
    ("1_000", {}, None),        # and underscores
    ("\u20031", {}, None),      # and Unicode spaces around
    ("1 2", {}, None),
    ("9" * 20, {}, 10 ** 20 - 1),
    ("9" * 21, {}, None),
    ("0x8086", {"base": 16}, 0x8086),
    ("d2008c22260286", {"base": 16}, 0xD2008C22260286),
    ("0X1b36\n", {"base": 16}, 0x1B36),
    ("0x", {"base": 16}, None),
    ("0xg1", {"base": 16}, None),
    ("0x02", {"base": 0}, 2),
    ("31", {"base": 0}, 31),
    ("010", {"base": 0}, None),  # C reads it as octal 8, Python refuses it: so do we
    ("0660", {"base": 8}, 0o660),
    ("0680", {"base": 8}, None),
    ("12345", {"max_digits": 4}, None),
])
def test_only_ascii_digits_of_the_files_format_are_numbers(text, form, want):
    assert parse_int(text, **form) == want


def test_a_flag_is_exactly_0_or_1():
    assert parse_bool01("1") is True and parse_bool01("0\n") is False
    assert parse_bool01("yes") is None and parse_bool01("¹") is None and parse_bool01("10") is None
    assert parse_bool01(None) is None


def test_a_reader_warns_with_the_file_when_a_number_is_not_one(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "sys/count").write_text("1²\n")
    rd = Reader(Root.of(tmp_path))
    assert rd.read_int("/sys/count", what="a count") is None
    assert rd.warnings.as_list() == ["/sys/count: not a count ('1²')"]


def test_an_isolated_failure_costs_its_item_and_says_so(tmp_path):
    rd = Reader(Root.of(tmp_path))
    assert rd.isolated("/sys/x", "its attributes left unknown", "fallback", lambda: {}["missing"]) == "fallback"
    assert rd.warnings.as_list() == ["/sys/x: failed (KeyError: 'missing'); its attributes left unknown"]
    assert rd.isolated("/sys/y", "lost", None, lambda a: a + 1, 1) == 2
