"""WeCom channel (企业微信 / 微信客服): encrypted XML callbacks in, the WeCom API out.

In: `GET /webhooks/wecom` is WeCom's URL check (answer the decrypted `echostr`); `POST /webhooks/wecom`
carries `<xml><ToUserName/><Encrypt/></xml>`. Both are signed: msg_signature = SHA1 of the sorted
token, timestamp, nonce and ciphertext. The ciphertext is AES-256-CBC (key = base64 of the
43-character EncodingAESKey + "=", IV = its first 16 bytes, PKCS#7 padding to 32-byte blocks) of
random(16) + length(4, big-endian) + message + receive id (the corp id), which must be the shop's.
The token whose signature matches tells which shop the callback is for.

Out: replies POST to the send endpoint (微信客服 `kf/send_msg` by default; with `agent_id` and no
`open_kfid`, an app's `message/send`) with an access token fetched from `gettoken` and cached until
shortly before it expires. An escalation hands the 微信客服 session to the human queue
(`kf/service_state/trans`, service_state 2).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from csbot.clock import Clock
from csbot.config import ConfigError, Settings
from csbot.errors import InvalidSignature, MalformedEvent
from csbot.ingest.connectors.base import (
    Answer,
    HttpAnswer,
    HttpRequest,
    Payload,
    Received,
    no_unknown,
    opt_str,
    opt_url,
    option_key,
    req_str,
)
from csbot.ingest.events import parse_event
from csbot.outbox.delivery import DeliveryError, Sender
from csbot.store.models import OutboxItem

log = logging.getLogger(__name__)

NAME = "wecom"
API_BASE = "https://qyapi.weixin.qq.com"
BLOCK = 32  # WeCom pads to 32-byte blocks (PKCS#7 with k = 32), not AES's 16
TOKEN_MARGIN = timedelta(minutes=5)  # refresh the access token this long before WeCom says it expires
EXPIRED_TOKEN_CODES = {40001, 40014, 42001}


# --- the cipher: pure ----------------------------------------------------------------------------------


def aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def msg_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypted))).encode()).hexdigest()


def decrypt(encoding_aes_key: str, encrypted: str, receive_id: str) -> str:
    """The message inside a WeCom ciphertext; InvalidSignature if it does not decrypt to one for `receive_id`."""
    key = aes_key(encoding_aes_key)
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except binascii.Error:
        raise InvalidSignature("ciphertext is not base64") from None
    if not raw or len(raw) % BLOCK:
        raise InvalidSignature("ciphertext is not a whole number of 32-byte blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK * 8).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise InvalidSignature("bad padding: not encrypted with this EncodingAESKey") from None
    if len(plain) < 20:
        raise InvalidSignature("ciphertext too short")
    (length,) = struct.unpack(">I", plain[16:20])
    message, rest = plain[20:20 + length], plain[20 + length:]
    # The receive id at the end binds the message to this corp: a ciphertext for another is refused.
    if len(message) != length or not hmac.compare_digest(rest, receive_id.encode()):
        raise InvalidSignature("receive id does not match this shop's corp id")
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("decrypted message is not UTF-8") from None


def encrypt(encoding_aes_key: str, message: str, receive_id: str, *, random16: bytes | None = None) -> str:
    """The inverse of `decrypt` (for passive replies and tests)."""
    key = aes_key(encoding_aes_key)
    body = message.encode()
    plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body + receive_id.encode()
    padder = padding.PKCS7(BLOCK * 8).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def parse_xml(text: str | bytes, what: str) -> dict[str, str]:
    """The flat `<xml><Name>value</Name>…</xml>` WeCom sends, as a dict. defusedxml: no entities, no DTDs."""
    try:
        root = ElementTree.fromstring(text)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise MalformedEvent(what, "not valid XML (or uses DTDs/entities)") from None
    return {child.tag: (child.text or "").strip() for child in root}


# --- options ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeComOptions:
    corp_id: str  # the receive id
    token: str
    encoding_aes_key: str
    secret: str | None  # corpsecret (微信客服 or the app's): without it csbot reads but cannot answer
    open_kfid: str | None  # the 微信客服 account replies come from
    agent_id: str | None  # an app's AgentId, when messages come through an app instead of 微信客服
    token_url: str
    send_url: str
    handoff_url: str


def check(key: str, options: Mapping[str, Any]) -> None:
    _options(key, options)


def _options(key: str, options: Mapping[str, Any]) -> WeComOptions:
    no_unknown(key, options, {"corp_id", "token", "encoding_aes_key", "secret", "open_kfid", "agent_id",
                              "api_base", "token_url", "send_url", "handoff_url"})
    encoding_aes_key = req_str(key, options, "encoding_aes_key", "43 characters, from the callback settings")
    try:
        aes_key(encoding_aes_key)
    except ValueError as exc:
        raise ConfigError(f"{key}.encoding_aes_key", str(exc)) from None
    open_kfid, agent_id = opt_str(key, options, "open_kfid"), opt_str(key, options, "agent_id")
    base = opt_url(key, options, "api_base", API_BASE) or API_BASE
    default_send = f"{base}/cgi-bin/message/send" if agent_id and not open_kfid else f"{base}/cgi-bin/kf/send_msg"
    return WeComOptions(
        corp_id=req_str(key, options, "corp_id", "企业ID, the receive id"),
        token=req_str(key, options, "token", "from the callback settings"),
        encoding_aes_key=encoding_aes_key,
        secret=opt_str(key, options, "secret"),
        open_kfid=open_kfid,
        agent_id=agent_id,
        token_url=opt_url(key, options, "token_url", f"{base}/cgi-bin/gettoken") or "",
        send_url=opt_url(key, options, "send_url", default_send) or "",
        handoff_url=opt_url(key, options, "handoff_url", f"{base}/cgi-bin/kf/service_state/trans") or "",
    )


# --- the connector ----------------------------------------------------------------------------------------


class WeComConnector:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._shops = {shop.id: _options(option_key(shop.id, NAME), shop.channels[NAME])
                       for shop in settings.shops.values() if NAME in shop.channels}

    def _verified(self, query: Mapping[str, str], encrypted: str) -> tuple[str, WeComOptions]:
        """The shop whose token signed this ciphertext."""
        signature = query.get("msg_signature", "").lower().encode()
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not signature or not timestamp or not nonce:
            raise InvalidSignature("missing msg_signature, timestamp or nonce")
        matches = [(sid, o) for sid, o in self._shops.items()
                   if hmac.compare_digest(msg_signature(o.token, timestamp, nonce, encrypted).encode(), signature)]
        if not matches:
            raise InvalidSignature("msg_signature matches no shop's WeCom token")
        return matches[0]

    def check_url(self, query: Mapping[str, str]) -> str:
        """WeCom's URL check: the decrypted echostr proves we hold the token and the key."""
        echostr = query.get("echostr", "")
        _, options = self._verified(query, echostr)
        return decrypt(options.encoding_aes_key, echostr, options.corp_id)

    async def receive(self, request: HttpRequest, now: datetime) -> Received:
        envelope = parse_xml(request.body, "body")
        encrypted = envelope.get("Encrypt", "")
        shop_id, options = self._verified(request.query, encrypted)
        timestamp = request.query.get("timestamp", "")
        if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > self._settings.timestamp_tolerance:
            raise InvalidSignature("timestamp is outside the tolerance window")
        msg = parse_xml(decrypt(options.encoding_aes_key, encrypted, options.corp_id), "Encrypt")
        msg_id = msg.get("MsgId") or f"{msg.get('FromUserName')}:{msg.get('CreateTime')}:{msg.get('Event')}"
        delivery = f"{NAME}:{msg_id}"[:200]
        kind = msg.get("MsgType")
        if kind != "text":
            # 微信客服's kf_msg_or_event asks us to pull messages with kf/sync_msg: not done yet.
            return Received(delivery, None, f"{kind[:20] if kind else 'untyped'} message"
                            + (f" ({msg.get('Event', '')[:40]})" if kind == "event" else ""))
        sender = msg.get("FromUserName", "")
        if sender in (options.corp_id, options.open_kfid):
            return Received(delivery, None, "our own message")
        created = msg.get("CreateTime", "")
        event = parse_event({
            "type": "message.created", "shop": shop_id, "conversation_id": sender,
            "buyer": {"id": sender, "nick": ""},
            "message": {"id": msg.get("MsgId"), "text": msg.get("Content", ""),
                        "sent_at": datetime.fromtimestamp(int(created), UTC).isoformat()
                        if created.isdigit() and len(created) <= 11 else None},
        })
        return Received(delivery, event)

    def respond(self, received: Received, answer: Answer | None) -> HttpAnswer:
        return HttpAnswer(text="")  # an empty 200: no passive reply, replies go through the API

    def after_decision(self, shop_id: str, conversation_id: str, answer: Answer) -> list[Payload]:
        options = self._shops.get(shop_id)
        if answer.get("action") != "escalated" or options is None or options.open_kfid is None:
            return []
        return [{"type": "handoff.requested", "shop": shop_id, "conversation_id": conversation_id,
                 "buyer_id": conversation_id, "reason": answer.get("reason")}]

    def sender(self, session: aiohttp.ClientSession, clock: Clock, timeout: float) -> Sender | None:
        shops = {sid: o for sid, o in self._shops.items() if o.secret}
        return WeComSender(session, shops, clock, timeout) if shops else None


class WeComSender:
    def __init__(self, session: aiohttp.ClientSession, shops: Mapping[str, WeComOptions], clock: Clock,
                 timeout: float) -> None:
        self._session = session
        self._shops = shops
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._tokens: dict[str, tuple[str, datetime]] = {}  # shop -> (access token, refresh after)
        self._locks: dict[str, asyncio.Lock] = {}

    async def access_token(self, shop_id: str, options: WeComOptions) -> str:
        cached = self._tokens.get(shop_id)
        if cached and self._clock.now() < cached[1]:
            return cached[0]
        # One fetch per shop at a time: WeCom rate-limits gettoken, and a burst of replies would each ask.
        async with self._locks.setdefault(shop_id, asyncio.Lock()):
            cached = self._tokens.get(shop_id)
            if cached and self._clock.now() < cached[1]:
                return cached[0]
            data = await self._call("GET", options.token_url,
                                    params={"corpid": options.corp_id, "corpsecret": options.secret or ""})
            token, expires_in = data.get("access_token"), data.get("expires_in", 7200)
            if not isinstance(token, str) or not token or not isinstance(expires_in, int):
                raise DeliveryError("gettoken answered without an access_token")
            self._tokens[shop_id] = (token, self._clock.now() + timedelta(seconds=expires_in) - TOKEN_MARGIN)
            log.info("wecom access token for shop %s fetched, valid %d s", shop_id, expires_in)
            return token

    async def send(self, item: OutboxItem) -> None:
        options = self._shops.get(item.shop_id)
        if options is None:
            raise DeliveryError(f"no WeCom secret for shop {item.shop_id!r}")
        payload = item.payload
        kind = payload.get("type")
        if kind == "reply.created":
            url, body = options.send_url, self._message(options, item)
        elif kind == "handoff.requested" and options.open_kfid:
            url, body = options.handoff_url, {"open_kfid": options.open_kfid, "external_userid": payload["buyer_id"],
                                              "service_state": 2}
        else:
            raise DeliveryError(f"WeCom cannot deliver {kind!r}")
        token = await self.access_token(item.shop_id, options)
        try:
            await self._call("POST", url, params={"access_token": token}, json=body)
        except _ExpiredToken:
            self._tokens.pop(item.shop_id, None)  # fetched afresh on the retry
            raise

    @staticmethod
    def _message(options: WeComOptions, item: OutboxItem) -> dict[str, Any]:
        payload = item.payload
        body: dict[str, Any] = {"touser": payload["buyer_id"], "msgtype": "text", "text": {"content": payload["text"]}}
        if options.open_kfid:
            # msgid (at most 32 characters) lets WeCom drop our redelivery of the same reply.
            body |= {"open_kfid": options.open_kfid, "msgid": item.reply_id.removeprefix("r_")[:32]}
        elif options.agent_id:
            body["agentid"] = int(options.agent_id) if options.agent_id.isdigit() else options.agent_id
        return body

    async def _call(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        try:
            async with self._session.request(method, url, timeout=self._timeout, **kw) as resp:
                if resp.status >= 300:
                    raise DeliveryError(f"HTTP {resp.status} from WeCom")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise DeliveryError("WeCom answered something other than a JSON object")
        code = data.get("errcode", 0)
        if code in EXPIRED_TOKEN_CODES:
            raise _ExpiredToken(f"WeCom errcode {code}: access token invalid or expired")
        if code != 0:
            raise DeliveryError(f"WeCom errcode {code}: {str(data.get('errmsg', ''))[:200]}")
        return data


class _ExpiredToken(DeliveryError):
    pass
