"""Console store: users, sessions, API tokens and remarks. Functions take an open transaction (`Tx`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from csbot.store.db import Tx
from csbot.store.models import ApiToken, AuthSession, Remark, User


async def user_by_name(tx: Tx, name: str) -> User | None:
    return (await tx.execute(select(User).where(User.name == name))).scalar_one_or_none()


async def add_user(tx: Tx, *, name: str, role: str, password_hash: str, now: datetime) -> User:
    """Create the user, or reset the role and password of an existing one."""
    user = await user_by_name(tx, name)
    if user is None:
        user = User(name=name, role=role, password_hash=password_hash, created_at=now)
        tx.add(user)
    else:
        user.role, user.password_hash, user.disabled_at = role, password_hash, None
    await tx.flush()
    return user


async def list_users(tx: Tx) -> list[User]:
    return list((await tx.execute(select(User).order_by(User.name))).scalars())


async def add_session(tx: Tx, *, user_id: int, token_hash: str, csrf_token: str, now: datetime,
                      expires_at: datetime) -> None:
    # Expired sessions are swept here rather than by a job: logins are rare, the table stays small.
    await tx.execute(delete(AuthSession).where(AuthSession.expires_at < now))
    tx.add(AuthSession(user_id=user_id, token_hash=token_hash, csrf_token=csrf_token, created_at=now,
                       expires_at=expires_at))
    await tx.flush()


async def live_session(tx: Tx, token_hash: str, *, now: datetime) -> tuple[AuthSession, User] | None:
    query = (
        select(AuthSession, User).join(User, User.id == AuthSession.user_id)
        .where(AuthSession.token_hash == token_hash, AuthSession.expires_at > now, User.disabled_at.is_(None))
    )
    row = (await tx.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def end_session(tx: Tx, token_hash: str) -> None:
    await tx.execute(delete(AuthSession).where(AuthSession.token_hash == token_hash))


async def add_api_token(tx: Tx, *, user_id: int, token_hash: str, label: str, now: datetime) -> None:
    tx.add(ApiToken(user_id=user_id, token_hash=token_hash, label=label, created_at=now))
    await tx.flush()


async def user_for_token(tx: Tx, token_hash: str) -> User | None:
    query = (
        select(User).join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None), User.disabled_at.is_(None))
    )
    return (await tx.execute(query)).scalar_one_or_none()


async def add_remark(tx: Tx, *, conversation_id: int | None, order_id: int | None, kind: str, text: str,
                     author: str, now: datetime) -> Remark:
    remark = Remark(conversation_id=conversation_id, order_id=order_id, kind=kind, text=text, author=author,
                    created_at=now)
    tx.add(remark)
    await tx.flush()
    return remark


async def remarks_of(tx: Tx, conversation_id: int, order_ids: list[int]) -> list[Remark]:
    cond = Remark.conversation_id == conversation_id
    if order_ids:
        cond = cond | Remark.order_id.in_(order_ids)
    return list((await tx.execute(select(Remark).where(cond).order_by(Remark.id))).scalars())
