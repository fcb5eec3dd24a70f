"""Privacy in logs: buyers' phone numbers, addresses and names never reach the log as written."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from csbot.clock import FrozenClock
from csbot.keys import outbox_key, reminders_key
from csbot.privacy import PiiFilter, install, mask_pii
from tests.conftest import Receiver, Signer, message_event

Client = TestClient[Any, Any]
PHONE, ADDRESS, RECEIVER = "13812345678", "浙江省杭州市西湖区文三路88号5栋302室", "张三丰"
BUYER_TEXT = f"收货人{RECEIVER}，电话138 1234 5678，地址{ADDRESS}，能今天发货吗"


class Collect(logging.Handler):
    """A handler on the root logger for the duration of a test: the records, and the text as formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.stream = io.StringIO()
        logging.getLogger().addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.stream.write(self.format(record) + "\n")

    def close(self) -> None:
        logging.getLogger().removeHandler(self)
        super().close()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("电话13812345678", "电话138****5678"),
        ("手机 +86 139-1234-5678 谢谢", "手机 139****5678 谢谢"),
        ("138 1234 5678", "138****5678"),
        ("0086 15012345678", "150****5678"),
        ("座机010-12345678", "座机010-****5678"),
        ("(0755)1234567", "(0755)-****4567"),
        ("北京市朝阳区建国路88号3栋502室，放门口", "[地址]，放门口"),
        ("广东省深圳市南山区科技园", "[地址]"),
        ("收货人：张三丰 电话", "收货人：张** 电话"),
        ('{"nick": "小王", "qty": 1}', '{"nick": "小*", "qty": 1}'),
        ("receiver_name='李四'", "receiver_name='李*'"),
        ("\\u5317\\u4eac\\u5e02\\u671d\\u9633\\u533a\\u5efa\\u56fd\\u8def", "[地址]"),  # JSON-escaped
        # left alone: order ids, amounts, times, ordinary buyer questions
        ("订单 20261123123456789 金额199.00", "订单 20261123123456789 金额199.00"),
        ("明天10:30在吗 这个区县都能送吗", "明天10:30在吗 这个区县都能送吗"),
        ("outbox r_3f2a attempt 2 failed (HTTP 503)", "outbox r_3f2a attempt 2 failed (HTTP 503)"),
    ],
)
def test_mask_pii(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


def test_the_filter_masks_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("csbot.test_privacy")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install(logger)
        install(logger)  # idempotent: one filter per handler
        assert sum(isinstance(f, PiiFilter) for f in handler.filters) == 1
        logger.warning("platform said: %s", f"bad phone {PHONE}")
        try:
            raise ValueError(f"cannot ship to {ADDRESS}")
        except ValueError:
            logger.exception("order failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "138****5678" in out and "[地址]" in out and "ValueError" in out
    assert PHONE not in out and "文三路" not in out


async def test_buyer_data_through_webhook_pipeline_outbox_and_reminders_is_not_logged(
        client: Client, sign: Signer, clock: FrozenClock, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # Below, the drivers' and SQLAlchemy's statement logging, which prints bound parameters: the filter's case.
    for name in ("sqlalchemy", "aiosqlite", "asyncpg"):
        caplog.set_level(logging.WARNING, logger=name)
    log = Collect()
    body, headers = sign(message_event(BUYER_TEXT, nick=RECEIVER, buyer_id="b-7"))
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
    body, headers = sign(message_event("在吗", nick=RECEIVER, buyer_id="b-7"))  # auto-sent: goes to the outbox
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
    await receiver.wait_for(1)
    clock.advance(timedelta(days=1))
    await client.app[reminders_key].tick()
    await client.app[outbox_key].run_once()
    records = [r.getMessage() for r in log.records]
    assert any("action=" in m for m in records)  # the pipeline did log its outcome, by ids
    text = "\n".join(records)
    for secret in (PHONE, "1234 5678", ADDRESS, "文三路", RECEIVER, BUYER_TEXT[:10]):
        assert secret not in text
    log.close()


async def test_sql_logging_never_shows_bound_values(client: Client, sign: Signer,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    # SQLAlchemy's engine logging would print every bound parameter: the realistic way buyer text reaches a
    # log. The engine is created with hide_parameters, so the statements are logged and the values are not.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    log = Collect()
    install()  # as `csbot serve` does: on the root logger's handlers
    body, headers = sign(message_event(BUYER_TEXT, nick=RECEIVER))
    assert (await client.post("/webhooks/generic", data=body, headers=headers)).status == 200
    log.close()
    text = log.stream.getvalue()
    assert "INSERT INTO messages" in text and "parameters hidden" in text
    assert PHONE not in text and "1234 5678" not in text and "文三路" not in text and RECEIVER not in text
