"""Turning a request body into JSON bytes without trusting its size or its encoding."""
import zlib


class BodyTooLarge(Exception):
    """The body (compressed or inflated) is over its limit; maps to 413."""


class BodyUnreadable(Exception):
    """The body cannot be decoded (bad gzip, unknown encoding); maps to 400/415."""

    def __init__(self, message: str, *, http_status: int = 400):
        super().__init__(message)
        self.http_status = http_status


def body_decode(body: bytes, content_encoding: str | None, *, max_body: int, max_document: int) -> bytes:
    """The document bytes of `body`: inflated when gzip, refused past either limit.

    Inflation is bounded to `max_document + 1` bytes so a zip bomb (10 MB of zeros is
    10 KB gzipped) is detected after inflating at most the limit, never all of it.
    """
    if len(body) > max_body:
        raise BodyTooLarge(f"body is {len(body)} bytes, limit {max_body}")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > max_document:
            raise BodyTooLarge(f"document is {len(body)} bytes, limit {max_document}")
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise BodyUnreadable(f"unsupported Content-Encoding {encoding[:40]!r} (use gzip or none)", http_status=415)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_document + 1)
    except zlib.error as exc:
        raise BodyUnreadable(f"body is not valid gzip: {exc}") from None
    if len(out) > max_document or inflater.unconsumed_tail:
        raise BodyTooLarge(f"document inflates past the limit of {max_document} bytes")
    if not inflater.eof:
        raise BodyUnreadable("gzip body is truncated")
    if inflater.unused_data.strip(b"\0"):
        raise BodyUnreadable("trailing data after the gzip member")
    return out
