"""The signature every delivery carries, and the check a receiver makes (documented in docs/deploy.md).

X-Fleet-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Fleet-Timestamp>." + body)>. The timestamp is
signed with the body so a captured request cannot be replayed later as new.
"""
import hashlib
import hmac


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_valid(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), header)
