"""Privacy: mask buyers' phone numbers, addresses and names in log output. Pure text rewriting, plus the
logging filter `csbot serve` installs on its handlers (tests install it the same way).

csbot logs ids and outcomes, never buyer text; this is the net under that rule for what slips through anyway:
exception messages quoting a value, a platform's error body, SQL parameters when someone turns on
SQLAlchemy's engine logging. Masking keeps the shape (`138****5678`) so a log line can still be matched
with a support ticket by its last digits.
"""

from __future__ import annotations

import logging
import re

_CJK = "\u4e00-\u9fff"
# Chinese mobiles: 1[3-9] + 9 digits, optionally +86 / 0086 / 86 first, spaces or dashes between groups.
_MOBILE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
# Landlines: area code 0 + 2-3 digits (optionally in brackets), then 7-8 digits.
_LANDLINE = re.compile(r"(?<![\d])(\(?0\d{2,3}\)?)[\s-]?(\d{3,4})[\s-]?(\d{4})(?!\d)")
# An address: two or more consecutive administrative / street parts (北京市朝阳区, 建国路88号, 3栋502室 …),
# then whatever follows up to the next punctuation, which is usually more of it (小区, 门牌, 收件人的备注).
_PART = (rf"[{_CJK}A-Za-z0-9]{{1,12}}?(?:省|自治区|市|区|县|镇|乡|街道|大道|路|街|巷|弄|村|小区|大厦|号楼|号|栋|幢"
         rf"|单元|室|楼)")
_ADDRESS = re.compile(rf"(?:{_PART}){{2,}}[{_CJK}A-Za-z0-9\-#]*")
# Names in the fields we know carry them: buyer nick, receiver / consignee, and labelled text (收货人：张三).
_NAME_FIELD = re.compile(
    r"""(?P<key>["']?(?:nick|nickname|buyer_nick|receiver_name|receiver|consignee|contact_name|name)["']?\s*[:=]\s*)"""
    r"""(?P<q>["']?)(?P<value>[^"',}\s]{1,40})""", re.IGNORECASE)
_NAME_LABEL = re.compile(rf"(?P<key>(?:收货人|收件人|联系人|姓名|昵称)\s*[:：]?\s*)(?P<value>[{_CJK}A-Za-z·]{{1,10}})")
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")


def _mask_name(value: str) -> str:
    return value[:1] + "*" * max(1, len(value) - 1)


def mask_pii(text: str) -> str:
    """`text` with phone numbers, addresses and names in known fields masked."""
    if "\\u" in text:  # JSON with ensure_ascii (SQL parameters, payloads) would hide Chinese from the patterns
        text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    text = _NAME_FIELD.sub(lambda m: f"{m.group('key')}{m.group('q')}{_mask_name(m.group('value'))}", text)
    text = _NAME_LABEL.sub(lambda m: f"{m.group('key')}{_mask_name(m.group('value'))}", text)
    return _ADDRESS.sub("[地址]", text)


class PiiFilter(logging.Filter):
    """Rewrites each record's message (and traceback) masked, before any handler formats it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_pii(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> PiiFilter:
    """Add the filter to every handler of `logger` (default: the root logger), so records propagated from
    any library's logger are masked too (a logger's own filters see only records logged on it)."""
    pii = PiiFilter()
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, PiiFilter) for f in handler.filters):
            handler.addFilter(pii)
    return pii
