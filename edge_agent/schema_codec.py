"""How edge_agent.schema turns its frozen dataclasses into the wire's JSON and back, checking every field.

A body class lists its fields in wire order; ``to_dict`` writes them in that
order, so the bytes on the wire are what they were before the classes
existed. ``from_dict`` checks each known field against its annotation (str,
int, float, bool, None, str enums, tuples, nested bodies, dicts) and ignores
keys it does not know: a newer agent may add fields (docs/mqtt.md, "Versions").
Standard library only.
"""

import dataclasses
import enum
import functools
import json
import types
import typing
from dataclasses import field

from edge_agent.errors import SchemaError


def wire(key: str | None = None, *, omit_empty: bool = False, **kwargs):
    """A field whose JSON key is ``key`` (for Python keywords), left out of the JSON when empty (None,
    False, ()) if ``omit_empty``: that is how the agent has always sent it."""
    return field(metadata={"key": key, "omit_empty": omit_empty}, **kwargs)


class Body:
    """A JSON object of the wire: ``to_dict``/``from_dict`` keep the field order, so bytes stay the same."""

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("omit_empty") and value in (None, False, ()):
                continue
            out[f.metadata.get("key") or f.name] = _encode(value)
        return out

    @classmethod
    def from_dict(cls, data, where: str | None = None):
        """Check every known field of ``data``; ignore unknown ones (a newer agent may add fields)."""
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise SchemaError(f"{where} must be a JSON object, got {short(data)}")
        values = {}
        for f in dataclasses.fields(cls):
            key = f.metadata.get("key") or f.name
            if key not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise SchemaError(f"{where}: field {key!r} is missing from {short(data)}")
                continue
            values[f.name] = decode(_hints(cls)[f.name], data[key], f"{where}.{key}")
        return cls(**values)

    @classmethod
    def check(cls, name: str, value) -> None:
        """SchemaError naming both unless ``value`` (JSON-ready) fits the field ``name``: for a producer
        that builds a body a field at a time."""
        decode(_hints(cls)[name], value, f"{cls.__name__}.{name}")

    def to_json(self) -> bytes:
        return dump(self.to_dict())

    @classmethod
    def from_json(cls, payload: bytes | str):
        return cls.from_dict(load(payload), cls.__name__)


def dump(message: dict) -> bytes:
    """Compact UTF-8 JSON, as the agent sends it. NaN and non-JSON values raise: the caller's bug.

    A lone surrogate (from a JSON escape such as "\\ud800" in a refused request, quoted back in the
    answer) has no UTF-8 form: such a message goes out with non-ASCII escaped, still valid JSON."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("ascii")


def load(payload: bytes | str) -> dict:
    try:
        value = json.loads(payload)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"payload {short(payload)} is not UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SchemaError(f"payload {short(value)} is not a JSON object")
    return value


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _encode(value):
    if isinstance(value, Body):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def decode(kind, value, where: str):
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if set(options) == {int, float}:
            return decode(float, value, where)
        return decode(options[0], value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise SchemaError(f"{where} must be a JSON array, got {short(value)}")
        return tuple(decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is dict or origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{where} must be a JSON object, got {short(value)}")
        if not args:
            return value
        return {k: decode(args[1], v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, Body):
        return kind.from_dict(value, where)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            raise SchemaError(f"{where}: {short(value)} is not one of {', '.join(m.value for m in kind)}") from None
    return _scalar(kind, value, where)


def _scalar(kind, value, where: str):
    if kind is float:  # an int stays an int: 62 must not come back as 62.0
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise SchemaError(f"{where} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {short(value)}")
    return value


_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
