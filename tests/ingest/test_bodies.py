"""Body limits and gzip handling, without a request."""
import gzip
import zlib

import pytest

from fleet.ingest.bodies import BodyTooLarge, BodyUnreadable, body_decode


def test_a_gzip_bomb_is_refused_after_inflating_at_most_the_limit(monkeypatch):
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
    produced = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, *args):
            self._inner = real(*args)

        def decompress(self, data, max_length=0):
            out = self._inner.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Spy)
    with pytest.raises(BodyTooLarge):
        body_decode(bomb, "gzip", max_body=1024 * 1024, max_document=256 * 1024)
    assert len(bomb) < 1024 * 1024
    assert sum(produced) <= 256 * 1024 + 1


def test_compressed_body_over_its_limit_is_refused_before_inflating():
    with pytest.raises(BodyTooLarge):
        body_decode(b"x" * 2048, "gzip", max_body=1024, max_document=10**6)


def test_plain_body_over_the_document_limit_is_refused():
    with pytest.raises(BodyTooLarge):
        body_decode(b"{" + b" " * 5000 + b"}", None, max_body=10**6, max_document=4096)


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b'{"a": 1}')[:-6]])
def test_broken_or_truncated_gzip_is_unreadable(body):
    with pytest.raises(BodyUnreadable):
        body_decode(body, "gzip", max_body=10**6, max_document=10**6)


def test_unknown_encodings_are_refused_with_415():
    with pytest.raises(BodyUnreadable) as caught:
        body_decode(b"{}", "br", max_body=100, max_document=100)
    assert caught.value.http_status == 415


def test_gzip_round_trips_the_document_bytes():
    doc = b'{"schema": 1}'
    assert body_decode(gzip.compress(doc), "GZIP", max_body=100, max_document=100) == doc
