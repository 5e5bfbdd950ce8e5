"""Reading a request body within a deadline, and turning it into JSON bytes without trusting its size or its encoding."""
import socket
import time
import zlib

from django.http import UnreadablePostError

READ_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body (compressed or inflated) is over its limit; maps to 413."""


class BodyUnreadable(Exception):
    """The body cannot be decoded (bad gzip, unknown encoding); maps to 400/415."""

    def __init__(self, message: str, *, http_status: int = 400):
        super().__init__(message)
        self.http_status = http_status


class BodyTimeout(Exception):
    """The client did not send its whole body within the deadline; maps to 408."""


def _declared_length(meta) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def body_read(request, limit: int, *, deadline: float) -> bytes:
    """At most `limit + 1` bytes of the body, all received within `deadline` seconds.

    A client that sends a byte a second would otherwise hold a web thread for as long as it likes:
    gunicorn's gthread workers read the body without a timeout (their `timeout` only watches the
    worker process). Under gunicorn each read waits at most what is left of the deadline (the
    request's socket is in the WSGI environ); elsewhere (the test client) the deadline is checked
    between reads. A body over `limit` by its declared length is refused before a byte is read.
    """
    if _declared_length(request.META) > limit:
        raise BodyTooLarge(f"body over {limit} bytes")
    sock = request.META.get("gunicorn.socket")
    before = sock.gettimeout() if sock is not None else None
    end = time.monotonic() + deadline
    chunks, size = [], 0
    try:
        while size <= limit:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise BodyTimeout(f"the body did not arrive within {deadline:g} s")
            if sock is not None:
                sock.settimeout(remaining)
            chunk = request.read(min(READ_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (UnreadablePostError, TimeoutError) as exc:
        if time.monotonic() < end and not isinstance(exc.__cause__ or exc, TimeoutError):
            raise BodyUnreadable(f"the body could not be read: {exc}") from None
        _stop_reading(sock)
        raise BodyTimeout(f"the body did not arrive within {deadline:g} s") from None
    except BodyTimeout:
        _stop_reading(sock)
        raise
    finally:
        if sock is not None:
            sock.settimeout(before)
    return b"".join(chunks)


def _stop_reading(sock) -> None:
    """After a timed-out body, read no more from the connection: gunicorn would otherwise drain the rest of the
    body (at the client's pace) before the next request; with the read side shut it sees the end and closes."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


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
