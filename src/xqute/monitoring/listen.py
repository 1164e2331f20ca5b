"""Where the daemon listens for HTTP: ``--http`` / ``monitoring.http``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .values import boolean, opt_str

__all__ = ["HttpConfig", "is_loopback", "parse_http"]


@dataclass(frozen=True)
class HttpConfig:
    """Where the daemon listens for HTTP (``port`` 0: any free port)."""

    host: str = "127.0.0.1"
    port: int = 8765
    token_file: str | None = None  # default: next to the db, <stem>.token
    dashboard: bool = True

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_http(value: Any, where: str = "--http") -> HttpConfig:
    """``"127.0.0.1:8765"``, ``"8765"``, ``"[::1]:8765"`` or a mapping with
    ``listen``, ``token_file``, ``dashboard``. A bare port listens on loopback."""
    extra: dict[str, Any] = {}
    if isinstance(value, Mapping):
        unknown = set(value) - {"listen", "token_file", "dashboard"}
        if unknown:
            raise ConfigError.choice(
                f"{where}: key",
                sorted(unknown)[0],
                ["listen", "token_file", "dashboard"],
            )
        extra = {
            "token_file": opt_str(value.get("token_file"), f"{where}.token_file"),
            "dashboard": boolean(value.get("dashboard", True), f"{where}.dashboard"),
        }
        where = f"{where}.listen"
        value = value.get("listen", "127.0.0.1:8765")
    text = str(value).strip() if isinstance(value, str | int) else None
    if not text:
        raise ConfigError(f"{where} {value!r} must look like 127.0.0.1:8765 or 8765")
    host, port_text = "127.0.0.1", text
    if text.startswith("["):  # [::1]:8765
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
        if host != "localhost":
            ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"{where} {value!r} must be ADDRESS:PORT with an IP address (or"
            " localhost) and a port 0-65535, e.g. 127.0.0.1:8765"
        ) from None
    return HttpConfig(host=host, port=port, **extra)
