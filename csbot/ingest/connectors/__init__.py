"""Channel connectors: how each platform's requests come in and how replies leave csbot.

The registry below is the only list of platforms: a new one is a module with `check(key, options)`
and a connector class (see `base.Connector`), plus one line here.
"""

from __future__ import annotations

from collections.abc import Mapping

from csbot.config import Settings
from csbot.ingest.connectors import chatwoot, generic, wecom
from csbot.ingest.connectors.base import Connector, ConnectorSpec

CONNECTORS: Mapping[str, ConnectorSpec] = {
    generic.NAME: ConnectorSpec(check=generic.check, build=generic.GenericConnector),
    chatwoot.NAME: ConnectorSpec(check=chatwoot.check, build=chatwoot.ChatwootConnector),
    wecom.NAME: ConnectorSpec(check=wecom.check, build=wecom.WeComConnector),
}


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """Every connector: generic always (its own events and the global secret), the others when a shop uses them."""
    used = {name for shop in settings.shops.values() for name in shop.channels}
    return {name: spec.build(settings) for name, spec in CONNECTORS.items() if name == generic.NAME or name in used}
