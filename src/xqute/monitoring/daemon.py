"""Monitoring inside the queue daemon: its configuration, and starting the
alert loop and the HTTP server next to the pool.

Imported by the daemon and by ``SchedulerService`` (to validate the block
before spawning, and to tell where a running daemon serves HTTP). Imports
nothing of the web stack until an HTTP server is asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import ConfigError, XquteError
from ..queue.db import Database
from ..queue.store import SqliteJobScheduler
from .applied import applied_block
from .listen import parse_http
from .rules import MonitoringConfig, parse_monitoring

__all__ = ["daemon_config", "http_info", "read_config_file", "start_monitoring"]

logger = logging.getLogger("xqute.monitoring")


def daemon_config(
    monitoring: Mapping[str, Any] | None,
    http: str | None = None,
    db: Database | None = None,
) -> MonitoringConfig:
    """The monitoring block, parsed: ``monitoring`` (``--config FILE``'s), else
    the one ``xqute apply`` stored in ``db`` (the daemon then follows its new
    versions); ``http`` (``--http``) overrides the address of
    ``monitoring.http`` and keeps its token file. Raises ConfigError."""
    follow, version = False, None
    if monitoring is None and db is not None:
        follow = True
        found = applied_block(db)
        if found is not None:
            version, monitoring = found
    config = parse_monitoring(monitoring)
    config = replace(config, follow_applied=follow, applied_version=version)
    if http is not None:
        listen = parse_http(http)
        if config.http is not None:
            listen = replace(config.http, host=listen.host, port=listen.port)
        config = replace(config, http=listen)
    return config


def read_config_file(path: str) -> dict[str, Any] | None:
    """The ``monitoring:`` block of an xqute.yaml (None if it has none), checked:
    a problem raises ConfigError naming the file and the key."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping (keys like monitoring:)")
    block = data.get("monitoring")
    parse_monitoring(block, f"{path}: monitoring")
    return block


def http_info(store: SqliteJobScheduler, pid: int | None) -> dict[str, Any] | None:
    """Where the daemon ``pid`` serves HTTP (its ``<db stem>.http`` file)."""
    try:
        data = json.loads(store.sibling(".http").read_text())
    except (OSError, ValueError):
        return None
    if pid is None or data.get("pid") != pid:
        return None
    return {"url": data.get("url"), "token_file": data.get("token_file")}


async def start_monitoring(
    config: MonitoringConfig, store: SqliteJobScheduler
) -> list[Any]:
    """Start the alert loop and the HTTP server when configured; what to stop
    (``await x.stop()``) at the end. If one cannot start (the port is taken),
    the other is stopped and the error raised: the daemon stops with it."""
    extras: list[Any] = []
    try:
        if config.rules or config.follow_applied:
            from .evaluator import AlertEvaluator

            evaluator = AlertEvaluator(store.db, config, _alert_hooks())
            evaluator.start()
            extras.append(evaluator)
        if config.http is not None:
            try:
                from ..web.server import HttpServer
            except ImportError as exc:
                raise XquteError(
                    "the HTTP API needs the web extra: pip install 'xqute[web]'"
                    f" ({exc})"
                ) from exc
            server = HttpServer(store, config.http, config)
            extras.append(server)
            await server.start()
    except BaseException:
        for extra in reversed(extras):
            with contextlib.suppress(Exception):
                await extra.stop()
        raise
    return extras


def _alert_hooks() -> Any:
    """The plugins' ``on_alert`` implementations (None when no plugin has one)."""
    from ..hooks import HookCaller

    try:
        hooks = HookCaller(None)
    except XquteError as exc:
        logger.warning("plugins for on_alert: %s", exc)
        return None
    return hooks if hooks.implements("on_alert") else None
