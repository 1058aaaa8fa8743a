"""A section's payload as a typed dataclass, and its JSON Schema read off the type.

``Section.data`` may be a dataclass instance: the JSON report writes it field by field
(nested dataclasses, lists and dicts too), and :func:`json_schema` gives the schema
consumers validate it against — one declaration, so the payload and its schema cannot
drift apart::

    @dataclass
    class Unsupported:
        op: str
        nodes: int

    @dataclass
    class AllowlistData:
        unsupported: list[Unsupported]
        allowlist_size: int

    Analyzer(..., data_schema=json_schema(AllowlistData))

Field types: ``int``, ``float``, ``str``, ``bool``, ``None``, ``list[X]``, ``tuple[X, ...]``,
``dict[str, X]``, ``Literal[...]``, an ``enum.Enum``, a nested dataclass, ``X | Y``.
A field's docstring-like ``metadata={"description": ...}`` becomes its description.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import TYPE_CHECKING, Literal, Union

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from .report import JSON

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(cls: type[DataclassInstance]) -> dict[str, JSON]:
    """The JSON Schema (draft 2020-12) of what the JSON report writes for an instance of ``cls``."""
    return {"$schema": SCHEMA_DIALECT, **_object(cls)}


def _object(cls: type[DataclassInstance]) -> dict[str, JSON]:
    hints = typing.get_type_hints(cls)
    props: dict[str, JSON] = {}
    for f in dataclasses.fields(cls):
        prop = _type(hints[f.name], f"{cls.__name__}.{f.name}")
        description = f.metadata.get("description")
        if isinstance(description, str):
            prop = {**prop, "description": description}
        props[f.name] = prop
    out: dict[str, JSON] = {"type": "object", "properties": props,
                            "required": [f.name for f in dataclasses.fields(cls)], "additionalProperties": False}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        out["description"] = " ".join(cls.__doc__.split())
    return out


def _type(tp: object, where: str) -> dict[str, JSON]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is float:  # the JSON report writes a non-finite float as a string
        return {"anyOf": [{"type": "number"}, {"enum": ["inf", "-inf", "nan"]}]}
    simple: dict[object, str] = {int: "integer", str: "string", bool: "boolean", type(None): "null"}
    if tp in simple:
        return {"type": simple[tp]}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_type(a, where) for a in args]}
    if origin in (list, tuple) and args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
        return {"type": "array", "items": _type(args[0], where)}
    if origin is dict and len(args) == 2 and args[0] is str:
        return {"type": "object", "additionalProperties": _type(args[1], where)}
    if origin is Literal:
        return {"enum": [a if isinstance(a, (str, int, float, bool)) or a is None else str(a) for a in args]}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value if isinstance(m.value, (str, int, float, bool)) else str(m.value) for m in tp]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _object(tp)
    raise TypeError(f"{where}: {tp!r} has no JSON Schema here (int, float, str, bool, None, list, tuple[X, ...], "
                    "dict[str, X], Literal, Enum, a dataclass, or a union of these)")


__all__ = ["json_schema"]
