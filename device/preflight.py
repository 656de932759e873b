"""Checks of a configuration before it is used: at ``smscmd run``, on a reload (SIGHUP)
and by ``smscmd check-config``.

:func:`check` builds the command registry (built-ins, plug-ins when needed:
:func:`build_registry`, ``[handlers]``) and
verifies that each exec handler's program can be started: ``argv[0]`` with a ``/`` is a
path (relative ones are taken from the handler's ``cwd``, else the agent's working
directory) that must be an executable file; a bare name is looked up on the ``PATH`` the
handler gets (its ``env``'s ``PATH``, else the agent's, else
:data:`device.handlers.DEFAULT_PATH`), as ``execvpe`` will. Every problem is a
:class:`~device.errors.ConfigError` naming the file and the key
(``handlers."uptime".argv``). A program is only checked for existence and the execute
bit (for the agent's user); whether it works is the handler's business.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from device.commands import Handler, Registry, default_registry, load_plugins
from device.config import Config
from device.errors import ConfigError
from device.handlers import DEFAULT_PATH, HandlerConfig, apply_config

#: What makes the Handler of an ``mqtt = true`` table.
RemoteFactory = Callable[[HandlerConfig], Handler]

LOGGER = logging.getLogger(__name__)


def build_registry(config: Config, remote: RemoteFactory | None = None) -> Registry:
    """Built-in handlers, then plug-ins, then the ``[handlers]`` tables of the config.

    ``remote`` makes the ``mqtt = true`` handlers (the service's
    :class:`device.mqtt.handlers.RemoteHandlers`, bound to its broker connection);
    without it they are made unbound (``smscmd check-config``: never run), and
    :mod:`device.mqtt` is imported only when there is such a table.

    The plug-in scan is deferred (:meth:`~device.commands.Registry.defer`): it runs
    here only when a ``[handlers]`` table names a handler that is not built in (so a
    table for a plug-in, a clash of an exec handler with one, or a name that nothing
    declares is still an error now, at start), and otherwise at the first command
    without a handler of its own, or the first ``help``. An agent whose commands are
    all built in never imports :mod:`importlib.metadata` (about 1 MiB of memory).
    """
    registry = default_registry()
    registry.defer(load_plugins)
    if remote is None and any(cfg.mqtt for cfg in config.handlers):
        from device.mqtt.handlers import RemoteHandlers

        remote = RemoteHandlers().handler
    apply_config(registry, config.handlers, remote)
    return registry


def _executable(candidate: Path) -> bool:
    """A file that the agent's user may execute (what execvpe takes from a PATH folder;
    :func:`shutil.which`'s test, without importing shutil, 0.65 MiB)."""
    return candidate.is_file() and os.access(candidate, os.X_OK)


def program_problem(cfg: HandlerConfig) -> str | None:
    """Why ``cfg``'s program cannot be started (None: it can, or ``cfg`` has no argv)."""
    if not cfg.argv:
        return None
    program = cfg.argv[0]
    if "/" not in program:
        search = dict(cfg.env).get("PATH", os.environ.get("PATH", DEFAULT_PATH))
        if not any(_executable(Path(folder, program)) for folder in search.split(os.pathsep)):
            return f"program {program!r} not found on PATH ({search})"
        return None
    candidate = Path(program)
    if not candidate.is_absolute():
        candidate = (cfg.cwd or Path.cwd()) / candidate
    if not candidate.exists():
        return f"program {str(candidate)!r} does not exist"
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        return f"program {str(candidate)!r} is not an executable file"
    return None


def program_problems(config: Config, path: str | None) -> tuple[ConfigError, ...]:
    """One ConfigError per exec handler whose program cannot be started."""
    problems = []
    for cfg in config.handlers:
        problem = program_problem(cfg)
        if problem is not None:
            problems.append(ConfigError(problem, path=path, key=f'handlers."{cfg.name}".argv'))
    return tuple(problems)


def review(config: Config, path: str | Path | None) -> tuple[Registry | None, list[ConfigError]]:
    """The registry ``config`` gives (None when it cannot be built) and every problem,
    each a ConfigError naming ``path``: a ``[handlers]`` table that cannot apply, then
    each program that cannot be started, then a ``[metrics]`` table without
    ``prometheus_client`` installed (looked up, not imported)."""
    where = None if path is None else str(path)
    problems: list[ConfigError] = []
    registry: Registry | None = None
    try:
        registry = build_registry(config)
    except ConfigError as exc:
        if exc.path is not None or where is None:
            problems.append(exc)
        else:
            message = str(exc)
            if exc.key is not None:
                message = message.removeprefix(f"{exc.key}: ")
            problems.append(ConfigError(message, path=where, key=exc.key))
    problems.extend(program_problems(config, where))
    if config.metrics is not None and find_spec("prometheus_client") is None:
        problems.append(ConfigError(
            "needs prometheus_client, which is not installed (pip install 'smscmd[metrics]',"
            " or 'prometheus_client>=0.20' into the agent's virtualenv)",
            path=where, key="metrics",
        ))  # fmt: skip
    return registry, problems


def check(config: Config, path: str | Path | None) -> Registry:
    """The registry ``config`` gives, or raises the first problem :func:`review` finds."""
    registry, problems = review(config, path)
    if registry is None or problems:
        raise problems[0]
    return registry


__all__ = ["build_registry", "check", "program_problem", "program_problems", "review"]
