"""Which server gets the next job, and which servers are in rotation.

The choice is a pure function of (servers in config order, which are up, how many
of our jobs each runs, which one got the last job), so it is unit-tested without
any I/O. ``ServerPool`` holds that state for the scheduler; it does no I/O either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["ServerPool", "pick_server"]


def pick_server(
    names: Sequence[str],
    up: Collection[str],
    load: Mapping[str, int],
    last: str | None,
) -> str | None:
    """The server for the next job: fewest of our jobs running, then round robin.

    ``names`` is the configured order; among the servers that are ``up`` with the
    smallest ``load``, the first one after ``last`` (cyclically) wins, so equal
    servers take turns and a server that just rejoined catches up first.
    None when no server is up.
    """
    start = names.index(last) + 1 if last in names else 0
    best: str | None = None
    for i in range(len(names)):
        name = names[(start + i) % len(names)]
        if name in up and (best is None or load.get(name, 0) < load.get(best, 0)):
            best = name
    return best


@dataclass(slots=True)
class _Server:
    up: bool = True
    reason: str = ""  # why it is down
    load: int = 0  # our jobs in flight there


@dataclass(slots=True)
class ServerPool:
    """Rotation state of the configured servers (config order kept)."""

    names: tuple[str, ...]
    last: str | None = None
    _servers: dict[str, _Server] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._servers = {name: _Server() for name in self.names}

    def up(self) -> list[str]:
        return [n for n in self.names if self._servers[n].up]

    def is_up(self, name: str) -> bool:
        return self._servers[name].up

    def load(self, name: str) -> int:
        return self._servers[name].load

    def take(self) -> str | None:
        """Choose a server for a job and count the job there (before any await,
        so that concurrent submissions spread)."""
        loads = {n: s.load for n, s in self._servers.items()}
        name = pick_server(self.names, self.up(), loads, self.last)
        if name is not None:
            self.last = name
            self._servers[name].load += 1
        return name

    def release(self, name: str) -> None:
        server = self._servers.get(name)
        if server is not None and server.load > 0:
            server.load -= 1

    def mark_down(self, name: str, reason: str) -> bool:
        """Take a server out of rotation; True if it was up."""
        server = self._servers[name]
        was_up = server.up
        if was_up:
            server.up, server.reason = False, reason
        return was_up

    def mark_up(self, name: str) -> None:
        server = self._servers[name]
        server.up, server.reason = True, ""

    def reason(self, name: str) -> str:
        return self._servers[name].reason

    def describe_down(self) -> str:
        """``h1 (reason); h2 (reason)`` for error messages."""
        return "; ".join(
            f"{n} ({s.reason})" for n, s in self._servers.items() if not s.up
        )
