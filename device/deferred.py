"""Standard modules that a dependency imports but the agent does not use, loaded at
their first use instead (issue 14: ``smscmd run``'s memory, BENCHMARKS.md).

``construct`` (the PDU codec's library) imports, when it is imported, :mod:`hashlib`
(and with it OpenSSL's libcrypto: 3.5 MiB when :mod:`ssl` has not loaded it already),
:mod:`pickle` (0.6 MiB) and :mod:`pdb` (0.5 MiB), for features the codec never uses
(the names of compiled parsers, the ``Pickled`` and ``Debugger`` constructs).
:func:`defer` puts a stand-in for each into :data:`sys.modules`: ``import hashlib``
then binds the stand-in, and the first attribute anyone reads of it (``hashlib.sha256``,
``from pickle import dumps``, ``pdb.set_trace`` by :func:`breakpoint`) imports the real
module, which from then on answers every read (the stand-in's namespace is filled from
it, and :data:`sys.modules` holds the real one). A plug-in that uses one of them gets
the real module as before; only the moment it is loaded changes.

Not :class:`importlib.util.LazyLoader`: its module loads at the first attribute read
of *any* name, and the import system reads ``__spec__`` at every ``import`` of a module
found in :data:`sys.modules`, so construct's own ``import hashlib`` would load it at once.

A module already imported is left as it is. The stand-in carries the real module's
``__spec__`` (found, not executed), so the import system takes it for a loaded module.
Only ``smscmd run`` defers (:data:`MODULES`, in :mod:`device.cli`, before anything else
is imported); tests and the other subcommands import normally.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Iterable
from types import ModuleType
from typing import Any

#: What ``smscmd run`` defers (see the module docstring).
MODULES = ("hashlib", "pickle", "pdb")

_LOCK = threading.Lock()


class Deferred(ModuleType):
    """The stand-in for a module not imported yet (see the module docstring)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._load(), name)

    def _load(self) -> ModuleType:
        with _LOCK:
            real = self.__dict__.get("_deferred_real")
            if real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                real = importlib.import_module(self.__name__)
                self.__dict__.update(vars(real))
                self.__dict__["_deferred_real"] = real
            assert isinstance(real, ModuleType)
            return real


def defer(names: Iterable[str] = MODULES) -> list[str]:
    """A :class:`Deferred` stand-in in :data:`sys.modules` for each of ``names`` not
    imported yet and importable; returns the names deferred."""
    done = []
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        stand_in = Deferred(name, None)
        stand_in.__spec__ = spec
        stand_in.__loader__ = spec.loader
        sys.modules[name] = stand_in
        done.append(name)
    return done


__all__ = ["MODULES", "Deferred", "defer"]
