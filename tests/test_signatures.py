"""Standard Webhooks signing, checked against the specification's official test vector."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csbot.errors import InvalidSignature
from csbot.ingest.signatures import sign, signed_headers, verify

# https://github.com/standard-webhooks/standard-webhooks — the reference libraries' test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
AT_VECTOR_TIME = datetime.fromtimestamp(VECTOR_TS, UTC)
OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


def headers(signature: str, msg_id: str = VECTOR_ID, ts: int = VECTOR_TS) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_official_vector_signs() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG


def test_official_vector_verifies() -> None:
    signed = verify((VECTOR_SECRET,), headers(VECTOR_SIG), VECTOR_BODY, now=AT_VECTOR_TIME, tolerance=300)
    assert (signed.id, signed.timestamp) == (VECTOR_ID, VECTOR_TS)


def test_one_good_signature_among_several_is_enough() -> None:
    many = f"v1,Zm9vYmFy v2,whatever {VECTOR_SIG}"
    assert verify((VECTOR_SECRET,), headers(many), VECTOR_BODY, now=AT_VECTOR_TIME, tolerance=300).id == VECTOR_ID


def test_either_of_two_secrets_verifies_during_rotation() -> None:
    assert verify((OTHER_SECRET, VECTOR_SECRET), headers(VECTOR_SIG), VECTOR_BODY, now=AT_VECTOR_TIME, tolerance=300)


@pytest.mark.parametrize(
    ("case", "hdrs", "body", "secrets"),
    [
        ("tampered body", headers(VECTOR_SIG), b'{"test": 2432232315}', (VECTOR_SECRET,)),
        ("other id", headers(VECTOR_SIG, msg_id="msg_other"), VECTOR_BODY, (VECTOR_SECRET,)),
        ("wrong secret", headers(VECTOR_SIG), VECTOR_BODY, (OTHER_SECRET,)),
        ("unknown version only", headers("v2," + VECTOR_SIG[3:]), VECTOR_BODY, (VECTOR_SECRET,)),
        ("missing signature", {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS)}, VECTOR_BODY,
         (VECTOR_SECRET,)),
        ("timestamp not a number", headers(VECTOR_SIG) | {"webhook-timestamp": "yesterday"}, VECTOR_BODY,
         (VECTOR_SECRET,)),
    ],
)
def test_refused(case: str, hdrs: dict[str, str], body: bytes, secrets: tuple[str, ...]) -> None:
    with pytest.raises(InvalidSignature):
        verify(secrets, hdrs, body, now=AT_VECTOR_TIME, tolerance=300)


@pytest.mark.parametrize("skew", [-301, 301, 86400])
def test_timestamp_outside_tolerance_is_refused_even_when_signed(skew: int) -> None:
    ts = VECTOR_TS + skew
    hdrs = signed_headers(VECTOR_SECRET, VECTOR_ID, ts, VECTOR_BODY)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify((VECTOR_SECRET,), hdrs, VECTOR_BODY, now=AT_VECTOR_TIME, tolerance=300)


@pytest.mark.parametrize("skew", [-300, 0, 299])
def test_timestamp_inside_tolerance_is_accepted(skew: int) -> None:
    ts = VECTOR_TS + skew
    hdrs = signed_headers(VECTOR_SECRET, VECTOR_ID, ts, VECTOR_BODY)
    assert verify((VECTOR_SECRET,), hdrs, VECTOR_BODY, now=AT_VECTOR_TIME, tolerance=300).timestamp == ts
