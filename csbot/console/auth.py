"""Console: who is asking. Password hashing (argon2id), console sessions, API tokens, roles and CSRF.

Pure helpers plus queries through `console.repo`; HTTP is wired in `web/middlewares.py`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from csbot.console import repo as console_repo
from csbot.errors import CsbotError
from csbot.store.db import Tx
from csbot.store.models import User

Role = Literal["agent", "supervisor"]
ROLES: tuple[Role, ...] = ("agent", "supervisor")
SESSION_COOKIE = "csbot_session"
LOGIN_CSRF_COOKIE = "csbot_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verified when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class Forbidden(CsbotError):
    """Authenticated, but not allowed (role), or a POST without the session's CSRF token."""

    error = "forbidden"


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role
    via: Literal["session", "token"]
    csrf_token: str | None = None  # sessions only: the token every unsafe request must echo

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


def require_supervisor(identity: Identity) -> None:
    if not identity.is_supervisor:
        raise Forbidden("supervisors only")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def check_password(tx: Tx, name: str, password: str) -> User | None:
    """The user if the password is right; argon2 runs in a thread so the event loop keeps serving."""
    user = await console_repo.user_by_name(tx, name)
    stored = user.password_hash if user is not None and user.disabled_at is None else _DUMMY_HASH
    ok = await asyncio.to_thread(_verify, stored, password)
    return user if ok and user is not None and user.disabled_at is None else None


async def start_session(tx: Tx, user: User, *, now: datetime, hours: float) -> str:
    """A new session; returns the cookie value (never stored: only its hash is)."""
    token = new_token()
    await console_repo.add_session(tx, user_id=user.id, token_hash=token_hash(token),
                                   csrf_token=secrets.token_urlsafe(24), now=now,
                                   expires_at=now + timedelta(hours=hours))
    return token


async def identify_session(tx: Tx, cookie: str, *, now: datetime) -> Identity | None:
    found = await console_repo.live_session(tx, token_hash(cookie), now=now)
    if found is None:
        return None
    session, user = found
    return Identity(user.name, _role(user.role), "session", session.csrf_token)


async def identify_token(tx: Tx, token: str, *, configured: str | None) -> Identity | None:
    """The configured CSBOT_API_TOKEN acts as the operator ("api", supervisor: it could do everything
    before per-user logins existed); a user's API token acts as that user."""
    if configured and hmac.compare_digest(token.encode(), configured.encode()):
        return Identity("api", "supervisor", "token")
    user = await console_repo.user_for_token(tx, token_hash(token))
    return None if user is None else Identity(user.name, _role(user.role), "token")


def csrf_ok(identity: Identity, offered: str | None) -> bool:
    # Cookies ride along on cross-site requests; a token the attacker's page cannot read does not.
    if identity.via != "session":
        return True  # bearer tokens are not ambient credentials
    if not offered or identity.csrf_token is None:
        return False
    return hmac.compare_digest(offered.encode(), identity.csrf_token.encode())


def _role(value: str) -> Role:
    return "supervisor" if value == "supervisor" else "agent"
