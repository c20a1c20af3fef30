"""Backends chosen by name from a table and imported only when chosen (gpiozero's pattern)."""

import importlib


def load_backend(table: dict[str, str], name: str, what: str, error: type[Exception]) -> type:
    """The class that ``table[name]`` ("module:Class") names; ``error`` lists the valid names."""
    try:
        module_name, class_name = table[name].split(":")
    except KeyError:
        choices = ", ".join(sorted(table))
        raise error(f"{what} backend {name!r} is unknown; use one of: {choices}") from None
    return getattr(importlib.import_module(module_name), class_name)
