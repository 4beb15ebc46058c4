"""A minimal offline Gateway: holds exchange configs, opens no connections.

Enough for replay, where the tutorial passes a gateway to the Replayer only for contract
rules (makerlab takes them from the bundled instrument specs). Live connections arrive
with the live venues in a later issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Gateway"]


class Gateway:
    """Config holder with the tutorial's lifecycle (``init_clients``/``cleanup_clients``).

    Args:
        config_keys: ``{exc: {'key': ENV_NAME, 'secret': ENV_NAME, ...}}``; values name
            environment variables and are never read or logged here.
    """

    def __init__(self, config_keys: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.config_keys = {exc: dict(cfg) for exc, cfg in (config_keys or {}).items()}
        self.connected = False

    async def init_clients(self) -> None:
        """Offline: nothing to connect."""
        self.connected = True

    async def cleanup_clients(self) -> None:
        """Offline: nothing to close."""
        self.connected = False

    def exchanges(self) -> list[str]:
        return list(self.config_keys)
