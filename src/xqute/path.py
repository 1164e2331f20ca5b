"""Paths seen from two places: the driver's and the job's (xqute 2.x's names).

A job that runs in a container or on a cloud VM sees its files at another path
than the driver does: ``/mnt/disks/.pipen/P/0/job.rc`` in the job is
``gs://bucket/wd/P/0/job.rc`` (or ``/home/me/wd/P/0/job.rc``) for the driver.
``SpecPath`` is the driver's path and carries the job's one (``.mounted``);
``MountedPath`` is the job's path and carries the driver's one (``.spec``).
Joining, ``parent`` and ``with_name``/``with_suffix``/``with_stem`` keep the pair
in step, so ``workdir / "0" / "job.rc"`` knows both of its places. When nobody
says otherwise the two are the same path.

Both are ``panpath`` paths (``pathlib.Path`` subclasses, local or cloud, with the
async ``a_*`` methods pipen awaits): ``SpecPath("/x")`` is a local path,
``SpecPath("gs://b/x")`` a Google Cloud Storage one. This is the job folder's
path type for schedulers of the 2.x surface (``xqute.schedulers.scheduler``);
the engine itself only needs ``pathlib``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

from panpath import CloudPath, LocalPath, PanPath

from . import defaults

__all__ = ["CloudPath", "LocalPath", "MountedPath", "PanPath", "PathType", "SpecPath"]


def _plain(path: Any) -> PanPath:
    """The path as an unpaired panpath (``PanPath(p)`` returns ``p`` itself when
    it already is one, pairing included)."""
    return PanPath(str(path))


def _uri(path: Any) -> str:
    return str(path)


class _Paired:
    """What SpecPath and MountedPath share: the other side of the pair (``None``:
    the same path), kept in step by every method that derives a path."""

    _other: PanPath | None = None
    _router: type

    def _pair(self, derive: Any) -> Any:
        """``derive`` applied to this path and to its other side."""
        mine = derive(_plain(self))
        other = None if self._other is None else derive(self._other)
        return _route(self._router, mine, other)

    def __truediv__(self, key: Any) -> Any:
        return self._pair(lambda p: p / key)

    def joinpath(self, *segments: Any) -> Any:
        return self._pair(lambda p: p.joinpath(*segments))

    @property
    def parent(self) -> Any:
        return self._pair(lambda p: p.parent)

    def with_name(self, name: str) -> Any:
        return self._pair(lambda p: p.with_name(name))

    def with_suffix(self, suffix: str) -> Any:
        return self._pair(lambda p: p.with_suffix(suffix))

    def with_stem(self, stem: str) -> Any:
        return self._pair(lambda p: p.with_stem(stem))

    def _other_str(self) -> str:
        return _uri(self) if self._other is None else _uri(self._other)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, _Paired):
            return (type(other)._router is self._router) and (
                _uri(self),
                self._other_str(),
            ) == (_uri(other), other._other_str())
        return isinstance(other, Path) and _uri(self) == _uri(other)

    def __hash__(self) -> int:
        return hash((_uri(self), self._other_str()))

    def __reduce__(self) -> Any:
        other = None if self._other is None else _uri(self._other)
        return (_route, (self._router, _uri(self), other))

    def __repr__(self) -> str:
        if self._other is None or _uri(self._other) == _uri(self):
            return f"{self._router.__name__}({_uri(self)!r})"
        side = "mounted" if self._router is SpecPath else "spec"
        return f"{self._router.__name__}({_uri(self)!r}, {side}={_uri(self._other)!r})"

    async def get_fspath(self) -> str:
        """A local file path with this path's content: the path itself when it is
        local; a cloud file is copied to a local cache first (2.x's behaviour:
        a program that only takes local paths can read it)."""
        if not isinstance(self, CloudPath):
            return os.fspath(self)
        digest = hashlib.sha256(_uri(self).encode()).hexdigest()[:16]
        local = Path(defaults.DEFAULT_CLOUD_FSPATH) / digest / self.name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(await self.a_read_bytes())  # type: ignore[attr-defined]
        return str(local)


def _route(router: type, path: Any, other: Any) -> Any:
    """An instance of the router's subclass for the kind of ``path``."""
    base = type(_plain(path))
    obj = _paired_class(router, base)._make(_uri(_plain(path)))
    obj._other = None if other is None else _plain(other)
    return obj


@cache
def _paired_class(router: type, base: type) -> type:
    """SpecLocalPath, SpecGSPath, MountedLocalPath ...: made once per kind."""

    def _make(cls: type, text: str) -> Any:
        if issubclass(base, CloudPath):
            obj = base.__new__(cls, text)
        else:
            obj = Path.__new__(cls, text)
        if sys.version_info >= (3, 12):  # pathlib parses in __init__ there
            base.__init__(obj, text)
        return obj

    return type(
        f"{router.__name__[:-4]}{base.__name__}",
        (router, base),
        {"_make": classmethod(_make), "__module__": __name__},
    )


class SpecPath(_Paired, PanPath):
    """A path as the driver sees it; ``.mounted`` is where the job sees it.

    ``SpecPath("/home/me/wd", mounted="/mnt/disks/wd")``
    """

    def __new__(cls, path: Any, *args: Any, mounted: Any = None, **kwargs: Any) -> Any:
        if isinstance(path, SpecPath) and mounted is None:
            mounted = path._other
        return _route(SpecPath, path, mounted)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Everything was set by ``__new__``."""

    @property
    def mounted(self) -> MountedPath:
        """The same file as the job sees it."""
        return MountedPath(self._other_str(), spec=_uri(self))


class MountedPath(_Paired, PanPath):
    """A path as the job sees it; ``.spec`` is where the driver sees it.

    ``MountedPath("/mnt/disks/wd/in.txt", spec="gs://bucket/in.txt")``
    """

    def __new__(cls, path: Any, *args: Any, spec: Any = None, **kwargs: Any) -> Any:
        if isinstance(path, MountedPath) and spec is None:
            spec = path._other
        return _route(MountedPath, path, spec)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Everything was set by ``__new__``."""

    @property
    def spec(self) -> SpecPath:
        """The same file as the driver sees it."""
        return SpecPath(self._other_str(), mounted=_uri(self))

    def is_mounted(self) -> bool:
        """Whether the job sees this file at another path than the driver."""
        return self._other_str() != _uri(self)


SpecPath._router = SpecPath
MountedPath._router = MountedPath

PathType = MountedPath | SpecPath | Path | str
