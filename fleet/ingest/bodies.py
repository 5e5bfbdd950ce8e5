"""Reading a request body within a deadline, and turning it into JSON bytes without trusting its size or its encoding."""
import heapq
import itertools
import socket
import threading
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


class _Watchdog:
    """One thread per process that shuts the read side of sockets whose body deadline passed.

    A per-read socket timeout does not bound a body: a client sending a byte just within each timeout
    keeps every read alive. Shutting the read side makes the blocked read return at once, whatever
    the client does. One thread and a heap, not a timer thread per request (heartbeats come by the
    thousand a second).
    """

    def __init__(self):
        self._heap: list = []  # (deadline, key) of every watch, done or not, until its deadline
        self._pending: dict = {}  # key -> socket of the watches not yet done
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._ids = itertools.count()

    def watch(self, sock, at: float) -> int:
        key = next(self._ids)
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fleet-body-deadlines", daemon=True)
                self._thread.start()
            self._pending[key] = sock
            heapq.heappush(self._heap, (at, key))
            self._cv.notify()
        return key

    def unwatch(self, key: int) -> None:
        with self._cv:
            self._pending.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                at, key = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
                sock = self._pending.pop(key, None)
            if sock is not None:
                _shut_read(sock)


_watchdog = _Watchdog()


def body_read(request, limit: int, *, deadline: float) -> bytes:
    """At most `limit + 1` bytes of the body, all received within `deadline` seconds.

    A client that sends a byte a second would otherwise hold a web thread for as long as it likes:
    gunicorn's gthread workers read the body without a deadline (their `timeout` only watches the
    worker process). Under gunicorn (the request's socket is in the WSGI environ) the watchdog ends a
    read still blocked at the deadline; elsewhere (the test client) the deadline is checked between
    reads. A body over `limit` by its declared length is refused before a byte is read.
    """
    if _declared_length(request.META) > limit:
        body_abandon(request)
        raise BodyTooLarge(f"body over {limit} bytes")
    sock = request.META.get("gunicorn.socket")
    end = time.monotonic() + deadline
    key = _watchdog.watch(sock, end) if sock is not None else None
    chunks, size = [], 0
    try:
        while size <= limit:
            if time.monotonic() >= end:
                raise BodyTimeout(f"the body did not arrive within {deadline:g} s")
            chunk = request.read(min(READ_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except UnreadablePostError as exc:
        if time.monotonic() < end:
            raise BodyUnreadable(f"the body could not be read: {exc}") from None
        raise BodyTimeout(f"the body did not arrive within {deadline:g} s") from None
    except BodyTimeout:
        body_abandon(request)
        raise
    finally:
        if key is not None:
            _watchdog.unwatch(key)
    if time.monotonic() >= end and size < _declared_length(request.META):
        raise BodyTimeout(f"the body did not arrive within {deadline:g} s")  # cut short by the watchdog
    return b"".join(chunks)


def body_abandon(request) -> None:
    """Read no more of this connection (a request refused before or while its body came in): gunicorn would
    otherwise drain the rest of the body, at the client's pace and in a web thread, before the next request
    on the connection; with the read side shut it sees the end and closes it. Nothing to do off gunicorn."""
    sock = request.META.get("gunicorn.socket")
    if sock is not None:
        _shut_read(sock)


def _shut_read(sock) -> None:
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
