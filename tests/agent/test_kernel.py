"""Kernel releases: the one parser the collectors and the terminal view use."""
from agent.kernel import kernel_tuple, release_from_version_line


def test_kernel_release_is_parsed_from_proc_version():
    line = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 ...) #1 SMP"
    assert release_from_version_line(line) == "6.1.0-56-amd64"
    assert release_from_version_line("garbage") is None


def test_a_release_is_major_minor_in_ascii_digits():
    assert kernel_tuple("6.1.0-56-amd64") == (6, 1)
    assert kernel_tuple("5.19") == (5, 19)
    assert kernel_tuple("4.18.0-553.el8_10.x86_64") == (4, 18)
    assert kernel_tuple("٦.١.0") is None  # \d would have matched these, and int() read them
    assert kernel_tuple("v6.1") is None and kernel_tuple(None) is None and kernel_tuple("") is None
