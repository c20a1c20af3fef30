"""Backends chosen by name from a registry and imported only when asked for (gpiozero's pattern).

A backend is one module and one line in its registry. Its class declares the
config keys it reads (``OPTIONS``); the config check and the code that builds
it from the config both derive from that declaration. A backend module imports
its driver (pyusb, pyserial, gpiozero) inside its methods, never at import: the
config check imports every registered backend to read what it declares.
"""

import importlib
from contextlib import contextmanager

from common.tables import Key


class Configurable:
    """What a backend class declares about its section of the config file."""

    OPTIONS: dict[str, Key] = {}  # the config keys this backend reads, with their types, defaults and limits
    ARGUMENTS: dict[str, str] = {}  # config key -> constructor argument, where the two names differ

    @classmethod
    def arguments(cls, options: dict, config) -> dict:
        """Constructor arguments from ``options``, the section as validated (defaults filled in)."""
        return {cls.ARGUMENTS.get(key, key): options[key] for key in cls.OPTIONS}

    @classmethod
    def config_problems(cls, options: dict, services) -> list[str]:
        """What is wrong with the chosen backend's section beyond its keys' own limits. A value that is
        not of its key's kind is None here (reported already); ``services`` holds the valid services."""
        return []


class Registry:
    """Backends of one kind ("printer", "button") by name, each "module:Class"."""

    def __init__(self, what: str, error: type[Exception], table: dict[str, str]):
        self.what = what
        self.error = error
        self._table = dict(table)

    def names(self) -> tuple[str, ...]:
        return tuple(self._table)

    def load(self, name: str) -> type:
        """The class ``name`` is registered as; ``error`` lists the valid names."""
        try:
            module_name, class_name = self._table[name].split(":")
        except KeyError:
            choices = ", ".join(sorted(self._table))
            raise self.error(f"{self.what} backend {name!r} is unknown; use one of: {choices}") from None
        return getattr(importlib.import_module(module_name), class_name)

    def options(self) -> dict[str, Key]:
        """Every registered backend's config keys in one table (the config file has one section per kind)."""
        union: dict[str, Key] = {}
        for name in self._table:
            for key, spec in self.load(name).OPTIONS.items():
                if union.setdefault(key, spec) != spec:
                    raise TypeError(f"{self.what} backend {name!r} declares {key!r} unlike another backend; "
                                    "declare a shared key once (as LinkPrinter does) or give it its own name")
        return union

    def register(self, name: str, target: str) -> None:
        """Add backend ``name`` ("module:Class"); a name is registered once."""
        if name in self._table:
            raise ValueError(f"{self.what} backend {name!r} is registered already ({self._table[name]})")
        self._table[name] = target

    @contextmanager
    def registered(self, name: str, target: str):
        """``name`` registered for the duration of a with block (tests, a technician's script)."""
        self.register(name, target)
        try:
            yield
        finally:
            del self._table[name]


def load_backend(table: dict[str, str], name: str, what: str, error: type[Exception]) -> type:
    """The class that ``table[name]`` ("module:Class") names; ``error`` lists the valid names."""
    return Registry(what, error, table).load(name)
