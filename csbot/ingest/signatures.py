"""Webhook signatures: Standard Webhooks (https://www.standardwebhooks.com) and GitHub-style
`X-Hub-Signature-256`. Pure: no I/O.

signature = base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")), sent as
`webhook-signature: v1,<sig> [v1,<sig> …]` (several during secret rotation). We verify with a
constant-time comparison and refuse timestamps outside the tolerance window, so a captured
request cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from csbot.config import decode_webhook_secret
from csbot.errors import InvalidSignature


@dataclass(frozen=True)
class SignedHeaders:
    id: str
    timestamp: int
    signatures: tuple[str, ...]

    def as_dict(self) -> dict[str, str]:
        return {
            "webhook-id": self.id,
            "webhook-timestamp": str(self.timestamp),
            "webhook-signature": " ".join(self.signatures),
        }


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one message."""
    key = decode_webhook_secret(secret)
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return SignedHeaders(msg_id, timestamp, (sign(secret, msg_id, timestamp, body),)).as_dict()


def read_headers(headers: Mapping[str, str]) -> SignedHeaders:
    msg_id = headers.get("webhook-id", "").strip()
    raw_ts = headers.get("webhook-timestamp", "").strip()
    raw_sig = headers.get("webhook-signature", "").strip()
    if not msg_id or not raw_ts or not raw_sig:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(msg_id) > 200 or not (msg_id.isascii() and msg_id.isprintable()):
        raise InvalidSignature("webhook-id must be at most 200 printable ASCII characters")
    if not raw_ts.isdigit() or len(raw_ts) > 12:
        raise InvalidSignature("webhook-timestamp must be whole seconds since the epoch")
    return SignedHeaders(msg_id, int(raw_ts), tuple(raw_sig.split()))


def verify(secrets: tuple[str, ...], headers: Mapping[str, str], body: bytes, *, now: datetime,
           tolerance: int) -> SignedHeaders:
    """Return the parsed headers when one signature matches one secret; raise InvalidSignature otherwise."""
    signed = read_headers(headers)
    if abs(now.timestamp() - signed.timestamp) > tolerance:
        raise InvalidSignature("webhook-timestamp is outside the tolerance window")
    offered = [s.encode() for s in signed.signatures if s.startswith("v1,")]
    # Compare against every expected signature without short-cutting on the secret, so timing
    # reveals nothing about which secret or how many bytes matched.
    matched = False
    for secret in secrets:
        expected = sign(secret, signed.id, signed.timestamp, body).encode()
        for candidate in offered:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise InvalidSignature("no valid signature")
    return signed


# --- GitHub-style: X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)> ---------------------------

HUB_HEADER = "X-Hub-Signature-256"


def sign_hub(secret: str, body: bytes) -> str:
    """`sha256=<hex>` over the raw body, keyed with the secret's UTF-8 bytes (as GitHub does)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hub(secrets: tuple[str, ...], headers: Mapping[str, str], body: bytes) -> str:
    """Return the secret whose signature matches; raise InvalidSignature otherwise.

    This scheme signs no timestamp, so it cannot refuse a replayed request by age: the event's own
    idempotency key (message id) is what makes a replay harmless."""
    offered = headers.get(HUB_HEADER, "").strip().lower().encode()
    if not offered.startswith(b"sha256="):
        raise InvalidSignature(f"missing or malformed {HUB_HEADER} header (expected sha256=<hex>)")
    found: str | None = None
    for secret in secrets:  # no early exit: timing does not tell which secret matched
        if hmac.compare_digest(sign_hub(secret, body).encode(), offered) and found is None:
            found = secret
    if found is None:
        raise InvalidSignature("no valid signature")
    return found
