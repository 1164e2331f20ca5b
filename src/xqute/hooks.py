"""Plugin hooks (simplug, project "xqute") and the per-engine hook dispatcher.

``simplug`` (exported as ``xqute.simplug`` and ``xqute.plugin``) is the plugin
manager: ``@simplug.impl`` marks a hook implementation, plugins are registered with
``simplug.register`` or through the entry-point group ``xqute``.

Each ``Xqute`` resolves its own plugin set once (``plugins=[MyPlugin]``,
``["-name"]`` ...) into a ``HookCaller``. Calling through it never touches the
global registry, so two engines in one process can run different plugins, and a
hook that no enabled plugin implements costs one empty-tuple check on the hot path.
"""

from __future__ import annotations

import inspect
import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from simplug import NoSuchPlugin, Simplug, SimplugResult

from .errors import ConfigError, PluginError

if TYPE_CHECKING:
    from .engine import Xqute
    from .job import Job
    from .schedulers.base import Scheduler

__all__ = ["HookCaller", "plugin", "simplug"]

simplug = Simplug("xqute")
plugin = simplug  # the older name


@simplug.spec
def on_init(xqute: Xqute) -> None:
    """The engine was created (its scheduler exists, nothing runs yet)."""


@simplug.spec(result=SimplugResult.TRY_FIRST)
def on_shutdown(xqute: Xqute, sig: signal.Signals | None) -> bool | None:
    """The engine is shutting down; ``sig`` is None for a natural end.

    Returning False on a signal cancels the shutdown: the engine goes on running.
    """


@simplug.spec
async def on_job_init(scheduler: Scheduler, job: Job) -> None:
    """A job was created by ``feed``."""


@simplug.spec
async def on_job_queued(scheduler: Scheduler, job: Job) -> None:
    """A job was queued (again, for a retry)."""


@simplug.spec(result=SimplugResult.TRY_FIRST)
async def on_job_submitting(scheduler: Scheduler, job: Job) -> bool | None:
    """A job is about to be submitted; returning False skips it (outcome SKIPPED)."""


@simplug.spec
async def on_job_submitted(scheduler: Scheduler, job: Job) -> None:
    """A job was handed to its backend (``job.jid`` is known)."""


@simplug.spec
async def on_job_started(scheduler: Scheduler, job: Job) -> None:
    """A job started running."""


@simplug.spec
async def on_job_polling(scheduler: Scheduler, job: Job, counter: int) -> None:
    """A running job was looked at (once per poll cycle)."""


@simplug.spec(result=SimplugResult.TRY_FIRST)
async def on_job_killing(scheduler: Scheduler, job: Job) -> bool | None:
    """A job is about to be killed; returning False prevents the kill."""


@simplug.spec
async def on_job_killed(scheduler: Scheduler, job: Job) -> None:
    """A job was killed."""


@simplug.spec
async def on_job_failed(scheduler: Scheduler, job: Job) -> None:
    """A job failed (``job.rc``, ``job.outcome`` and ``job.reason`` say how)."""


@simplug.spec
async def on_job_succeeded(scheduler: Scheduler, job: Job) -> None:
    """A job succeeded."""


@simplug.spec
def on_jobcmd_init(scheduler: Scheduler, job: Job) -> str | None:
    """Bash code the wrapped script runs first, before the job is marked running."""


@simplug.spec
def on_jobcmd_prep(scheduler: Scheduler, job: Job) -> str | None:
    """Bash code the wrapped script runs just before the command."""


@simplug.spec
def on_jobcmd_end(scheduler: Scheduler, job: Job) -> str | None:
    """Bash code the wrapped script runs after the command (rc: ``$XQUTE_JOB_RC``)."""


@simplug.spec
async def on_alert(alert: dict[str, Any]) -> None:
    """An alert of the queue daemon fired or resolved (``alert["state"]``); the
    dict is the JSON the notifiers get (rule, key, value, summary, labels ...).
    Called in the daemon, for plugins enabled there."""


@simplug.spec
def on_workflow_start(run: dict[str, Any]) -> None:
    """A workflow or job run started (``run``: id, kind, name, namespace, state,
    event). Called by the daemon (a pool) after the fact, from the event log."""


@simplug.spec
def on_workflow_end(run: dict[str, Any]) -> None:
    """A workflow or job run ended (``run["state"]``: succeeded, failed,
    cancelled or timeout)."""


@simplug.spec
def on_task_ready(run: dict[str, Any], task: str) -> None:
    """A task of a run became ready to be queued."""


_entrypoints_loaded = False


def _load_entrypoints() -> None:
    global _entrypoints_loaded
    if not _entrypoints_loaded:
        _entrypoints_loaded = True
        simplug.load_entrypoints()


def _resolve(plugins: Iterable[Any] | None) -> list[Any]:
    """The enabled plugin wrappers for one engine, in simplug's priority order."""
    _load_entrypoints()
    registry = simplug.get_all_plugins()
    enabled = {name for name, w in registry.items() if w.enabled}
    if plugins is not None:
        if isinstance(plugins, str | bytes):
            raise ConfigError(f"plugins {plugins!r} must be a list, e.g. [{plugins!r}]")
        plugins = list(plugins)
        names = [p for p in plugins if isinstance(p, str)]
        only = bool(names) and all(not n.startswith(("+", "-")) for n in names)
        if names and not only and any(not n.startswith(("+", "-")) for n in names):
            raise ConfigError(
                f"plugins {plugins!r}: names must all have a +/- prefix or none may"
            )
        if only:
            enabled = set()
        for item in plugins:
            if isinstance(item, str):
                name = item.lstrip("+-")
                if name not in registry:
                    raise ConfigError.choice(
                        "plugin", name, sorted(registry) or ["<none>"]
                    )
                if item.startswith("-"):
                    enabled.discard(name)
                else:
                    enabled.add(name)
            else:
                enabled.add(_register(item))
        registry = simplug.get_all_plugins()
    wrappers = [w for name, w in registry.items() if name in enabled]
    return sorted(wrappers, key=lambda w: w.priority)


def _register(obj: Any) -> str:
    """Register a plugin object (module/class/instance) if new; return its name."""
    for name, wrapper in simplug.get_all_plugins().items():
        if wrapper.plugin is obj:
            return name
    _adapt_seed_on_init(obj)
    try:
        simplug.register(obj)
    except NoSuchPlugin as exc:
        raise ConfigError(f"plugin {obj!r} cannot be imported") from exc
    except Exception as exc:  # simplug raises plain exceptions for bad plugins
        raise ConfigError(f"plugin {obj!r} cannot be registered: {exc}") from exc
    for name, wrapper in simplug.get_all_plugins().items():
        if wrapper.plugin is obj:
            # enabled for the engine that named it, not for every engine
            wrapper.disable()
            return name
    raise ConfigError(f"plugin {obj!r} cannot be registered")  # pragma: no cover


def _adapt_seed_on_init(obj: Any) -> None:
    """A plugin written the seed way, ``on_init(scheduler)``, still works: it
    gets the engine's scheduler, with a DeprecationWarning (the hook's
    argument is ``xqute`` now, the engine; ``xqute.scheduler`` is the same)."""
    impl = getattr(obj, "on_init", None)
    func = getattr(impl, "impl", None)
    if func is None:
        return
    params = list(inspect.signature(func).parameters)
    if impl.has_self:
        params = params[1:]
    if params[:1] != ["scheduler"]:
        return
    import warnings

    name = getattr(obj, "name", None) or getattr(obj, "__name__", repr(obj))
    warnings.warn(
        f"plugin {name!r}: on_init(scheduler) is deprecated; write on_init(xqute)"
        " (the engine; its scheduler is xqute.scheduler)",
        DeprecationWarning,
        stacklevel=4,
    )
    if impl.has_self:

        def on_init(self: Any, xqute: Xqute) -> Any:
            return func(self, xqute.scheduler)

    else:

        def on_init(xqute: Xqute) -> Any:  # type: ignore[misc]
            return func(xqute.scheduler)

    obj.on_init = simplug.impl(on_init)


def _bind(owner: Any, impl: Any) -> Callable[..., Any]:
    """The callable for an implementation; methods get their plugin instance."""
    return impl.impl.__get__(owner) if impl.has_self else impl.impl


class HookCaller:
    """Calls hooks on one engine's resolved plugin set."""

    @classmethod
    def empty(cls) -> HookCaller:
        """A caller with no plugins (a scheduler used without an engine)."""
        caller = cls.__new__(cls)
        caller.names = []
        caller._impls = {spec: () for spec in _SPECS}
        return caller

    def __init__(self, plugins: Iterable[Any] | None = None) -> None:
        self._impls: dict[str, tuple[tuple[str, Callable[..., Any]], ...]] = {}
        wrappers = _resolve(plugins)
        self.names = [w.name for w in wrappers]
        # a class plugin whose hooks take self gets one instance per engine
        owners = {
            w.name: w.plugin() if inspect.isclass(w.plugin) else w.plugin
            for w in wrappers
            if any(getattr(w.hook(s), "has_self", False) for s in _SPECS)
        }
        for spec in _SPECS:
            impls = []
            for wrapper in wrappers:
                impl = wrapper.hook(spec)
                if impl is not None:
                    owner = owners.get(wrapper.name)
                    impls.append((wrapper.name, _bind(owner, impl)))
            self._impls[spec] = tuple(impls)

    def implements(self, hook: str) -> bool:
        return bool(self._impls[hook])

    def call(self, hook: str, *args: Any) -> list[Any]:
        """Call a sync hook; the non-None results, in plugin order."""
        results = []
        for name, func in self._impls[hook]:
            try:
                out = func(*args)
            except Exception as exc:
                raise PluginError(f"plugin {name!r} failed in {hook}: {exc!r}") from exc
            if out is not None:
                results.append(out)
        return results

    async def acall(self, hook: str, *args: Any) -> list[Any]:
        """Call an async hook (sync implementations are accepted too)."""
        impls = self._impls[hook]
        if not impls:
            return []
        results = []
        for name, func in impls:
            try:
                out = func(*args)
                if inspect.isawaitable(out):
                    out = await out
            except Exception as exc:
                raise PluginError(f"plugin {name!r} failed in {hook}: {exc!r}") from exc
            if out is not None:
                results.append(out)
        return results

    def vetoed(self, results: list[Any]) -> bool:
        """A veto hook (on_job_submitting, on_job_killing, on_shutdown) said no."""
        return any(r is False for r in results)


_SPECS = (
    "on_init",
    "on_shutdown",
    "on_job_init",
    "on_job_queued",
    "on_job_submitting",
    "on_job_submitted",
    "on_job_started",
    "on_job_polling",
    "on_job_killing",
    "on_job_killed",
    "on_job_failed",
    "on_job_succeeded",
    "on_jobcmd_init",
    "on_jobcmd_prep",
    "on_jobcmd_end",
    "on_alert",
    "on_workflow_start",
    "on_workflow_end",
    "on_task_ready",
)
