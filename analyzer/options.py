"""Analyzer options: declared as a dataclass, set from the config and the command line.

An analyzer that takes options declares them as a dataclass whose fields are made
with :func:`option` (type from the annotation, default, one-line help)::

    @dataclass(frozen=True)
    class AllowlistOptions:
        allowlist: list[str] = option(["Conv", "Relu"], "ops the target runtime runs")
        top: int = option(10, "rows in the table", minimum=1, flag=True)

    Analyzer("op-allowlist", ..., options=AllowlistOptions)

and reads them in ``run`` with ``ctx.options_for(AllowlistOptions)``. Users set them in
``[tool.model-analyze.plugins.op-allowlist]`` (per path in an override's ``plugins``
table) or with ``--option op-allowlist.allowlist=Conv,Relu``; a ``flag=True`` option is
also a top-level config key and a ``--top`` option of ``model-analyze PATH`` (one flag
sets every analyzer's option of that name: ``--top`` sizes the structure and hotspots
tables alike). Every value is checked against the field's type before any model runs:
an unknown analyzer or key, or a value of the wrong type, is exit 2 with one line
naming where it was set, the analyzer, the key and the expected type. The dataclass's
``__post_init__`` may check more (a device name) by raising ``ValueError``.

Supported field types: ``int``, ``float``, ``bool``, ``str``, ``list[str]``, a
``Literal`` of strings, and any of these ``| None``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar, Union, cast

from .errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from .descriptors import Analyzer
    from .manager import PluginManager

T = TypeVar("T")
OptionValue = int | float | str | bool | list[str] | None
META = "model_analyze.option"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
NONE_WORDS = ("", "none")


class BadValue(ValueError):
    """A value does not fit an option; the message is what was expected."""


def option(default: T, help: str, *, flag: bool = False, minimum: float | None = None,
           maximum: float | None = None, choices: Sequence[str] = ()) -> T:
    """A dataclass field that is an analyzer option (its type is the field's annotation).

    ``flag``: also a top-level config key and a ``--KEY`` option of ``model-analyze PATH``
    (and of ``compare``). ``minimum``/``maximum`` bound a number; ``choices`` restrict a string.
    """
    meta = {META: {"help": help, "flag": flag, "minimum": minimum, "maximum": maximum, "choices": tuple(choices)}}
    if isinstance(default, list):
        items = list(default)
        return cast(T, field(default_factory=lambda: list(items), metadata=meta))
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionSpec:
    """One option as the core sees it (read off the dataclass field)."""

    key: str
    """kebab-case: ``kv-dtype`` (the config key and the ``--option`` key; ``kv_dtype`` is accepted too)."""
    attr: str
    """The dataclass field (``kv_dtype``)."""
    kind: str
    """``int``, ``float``, ``bool``, ``str`` or ``list[str]``."""
    optional: bool
    default: OptionValue
    help: str
    flag: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def type_text(self) -> str:
        """``int``, ``list[str]``, ``"fp16" | "int8"`` — for listings."""
        base = " | ".join(f'"{c}"' for c in self.choices) if self.choices else self.kind
        return f"{base} | None" if self.optional else base

    def expected(self) -> str:
        """What a value must be, as error lines say it."""
        none = " (or omitted)" if self.optional else ""
        if self.kind in ("int", "float"):
            what = "an integer" if self.kind == "int" else "a number"
            lo, hi = self.minimum, self.maximum
            if lo is not None and hi is not None:
                return f"{what} from {_num(lo)} to {_num(hi)}{none}"
            if lo is not None:
                return f"{what} ≥ {_num(lo)}{none}"
            if hi is not None:
                return f"{what} ≤ {_num(hi)}{none}"
            return what + none
        if self.kind == "bool":
            return "true or false"
        if self.kind == "list[str]":
            return "a list of strings" + (f" from {', '.join(self.choices)}" if self.choices else "")
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices) + none
        return "a non-empty string" + none

    def check(self, value: object) -> OptionValue:
        """A config (TOML) or API value, checked; raises :class:`BadValue`."""
        if value is None and self.optional:
            return None
        if self.kind == "bool" and isinstance(value, bool):
            return value
        if self.kind in ("int", "float") and isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.kind == "int" and not isinstance(value, int):
                raise BadValue(self.expected())
            if not math.isfinite(value) or (self.minimum is not None and value < self.minimum) \
                    or (self.maximum is not None and value > self.maximum):
                raise BadValue(self.expected())
            return value if self.kind == "int" else float(value)
        if self.kind == "str" and isinstance(value, str) and value.strip():
            if self.choices and value.strip() not in self.choices:
                raise BadValue(self.expected())
            return value.strip()
        if self.kind == "list[str]" and isinstance(value, (list, tuple)) \
                and all(isinstance(x, str) and x.strip() for x in value):
            items = [x.strip() for x in value]
            if self.choices and any(x not in self.choices for x in items):
                raise BadValue(self.expected())
            return items
        if self.kind == "list[str]" and isinstance(value, str):
            raise BadValue(f"a list of strings (write [{value!r}])".replace("'", '"'))
        raise BadValue(self.expected())

    def parse(self, text: str) -> OptionValue:
        """A command-line value (``--option NAME.KEY=TEXT``), parsed then checked."""
        t = text.strip()
        if self.optional and t.lower() in NONE_WORDS:
            return None
        if self.kind == "bool":
            if t.lower() in TRUE_WORDS:
                return True
            if t.lower() in FALSE_WORDS:
                return False
            raise BadValue(self.expected())
        if self.kind in ("int", "float"):
            try:
                number: int | float = int(t) if self.kind == "int" else float(t)
            except ValueError:
                raise BadValue(self.expected()) from None
            return self.check(number)
        if self.kind == "list[str]":
            return self.check([x for x in (p.strip() for p in t.split(",")) if x])
        return self.check(t)


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _kind(tp: object, where: str) -> tuple[str, bool, tuple[str, ...]]:
    """``(kind, optional, choices)`` of an annotation; TypeError for a type options cannot take."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            kind, _, choices = _kind(rest[0], where)
            return kind, True, choices
    if tp in (int, float, str, bool):
        return cast(type, tp).__name__, False, ()
    if origin is list and args == (str,):
        return "list[str]", False, ()
    if origin is Literal and args and all(isinstance(a, str) for a in args):
        return "str", False, tuple(cast(tuple[str, ...], args))
    raise TypeError(f"{where}: option type {tp!r} is not supported (int, float, bool, str, list[str], "
                    "a Literal of strings, or one of these | None)")


def specs(cls: type[DataclassInstance]) -> list[OptionSpec]:
    """The options of an options dataclass; TypeError when it is not one."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"options {cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        where = f"{cls.__name__}.{f.name}"
        meta = f.metadata.get(META)
        if not isinstance(meta, Mapping):
            raise TypeError(f"{where}: make option fields with option(default, help)")
        kind, optional, choices = _kind(hints[f.name], where)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{where}: an option needs a default")
        spec = OptionSpec(f.name.replace("_", "-"), f.name, kind, optional, cast(OptionValue, default),
                          str(meta["help"]), bool(meta["flag"]), cast("float | None", meta["minimum"]),
                          cast("float | None", meta["maximum"]), tuple(cast(Sequence[str], meta["choices"]))
                          or choices)
        try:
            spec.check(spec.default)
        except BadValue as exc:
            raise TypeError(f"{where}: the default {spec.default!r} is not {exc}") from None
        out.append(spec)
    return out


def norm_key(key: str) -> str:
    return key.strip().replace("_", "-")


@dataclass
class OptionCatalog:
    """Every analyzer's options, by analyzer name."""

    analyzers: dict[str, tuple[type[DataclassInstance], list[OptionSpec]]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    """``(analyzer, why)`` for options classes that could not be read (reported as P002)."""

    def spec(self, analyzer: str, key: str) -> OptionSpec | None:
        k = norm_key(key)
        return next((s for s in self.analyzers[analyzer][1] if s.key == k), None)

    def flags(self) -> dict[str, OptionSpec]:
        """``key → spec`` of every flag option (the first analyzer's spec when several share a key)."""
        out: dict[str, OptionSpec] = {}
        for _, specs_ in self.analyzers.values():
            for s in specs_:
                if s.flag:
                    out.setdefault(s.key, s)
        return out

    def owners(self, key: str, flags_only: bool) -> list[tuple[str, OptionSpec]]:
        k = norm_key(key)
        return [(name, s) for name, (_, specs_) in self.analyzers.items() for s in specs_
                if s.key == k and (s.flag or not flags_only)]


def catalog(analyzers: Iterable[Analyzer]) -> OptionCatalog:
    out = OptionCatalog()
    for an in analyzers:
        if an.options is None:
            continue
        try:
            out.analyzers[an.name] = (an.options, specs(an.options))
        except (TypeError, NameError) as exc:
            out.problems.append((an.name, f"{type(exc).__name__}: {exc}"))
    return out


def installed_catalog(pm: PluginManager | None = None) -> OptionCatalog:
    """The options of every installed analyzer."""
    from .manager import get_plugin_manager

    items, _ = (pm or get_plugin_manager()).analyzers()
    return catalog(an for _, an in items)


@dataclass
class OptionLayer:
    """Option values from one source; later layers win."""

    label: str
    """Where they were set, as error lines say it (``--option``, ``pyproject.toml``)."""
    flags: dict[str, object] = field(default_factory=dict)
    """``key → value`` for every analyzer with an option of that key (top-level config keys,
    ``--top``; the API's ``AnalyzeOptions.params``)."""
    per: dict[str, dict[str, object]] = field(default_factory=dict)
    """``analyzer → key → value`` (``[tool.model-analyze.plugins.NAME]``, ``--option``)."""
    text: bool = False
    """Values are command-line text, parsed by the option's type."""
    flags_only: bool = True
    """``flags`` reach only ``flag=True`` options (the API's params reach any option)."""


def where_of(label: str, analyzer: str, key: str) -> str:
    """``--option serving.batch``, ``pyproject.toml: [tool.model-analyze.plugins.serving] batch``."""
    if label == "--option":
        return f"--option {analyzer}.{key}"
    if label.endswith("[tool.model-analyze]"):
        return f"{label[:-1]}.plugins.{analyzer}] {key}"
    return f"{label} plugins.{analyzer}.{key}"


def _value(spec: OptionSpec, raw: object, text: bool, where: str) -> OptionValue:
    try:
        return spec.parse(str(raw)) if text else spec.check(raw)
    except BadValue as exc:
        raise UsageError(f"{where}: expected {exc}, got {_show(raw)}") from None


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def checked(cat: OptionCatalog, layer: OptionLayer) -> list[tuple[str, OptionSpec, OptionValue]]:
    """Every value of ``layer`` checked against its option: ``(analyzer, spec, value)``.
    Unknown analyzers and keys and wrong types are usage errors naming where they were set."""
    out: list[tuple[str, OptionSpec, OptionValue]] = []
    for key, raw in layer.flags.items():
        owners = cat.owners(key, layer.flags_only)
        if not owners:
            raise UsageError(f"{layer.label} {key}: no analyzer has an option {norm_key(key)!r}")
        for name, spec in owners:
            where = layer.label if layer.label.startswith("--") else f"{layer.label} {spec.key}"
            out.append((name, spec, _value(spec, raw, layer.text, where)))
    for name, table in layer.per.items():
        if name not in cat.analyzers:
            known = sorted(cat.analyzers)
            # --option names one key (say which); a config table is wrong as a whole (its header)
            key = next(iter(table), "") if layer.label == "--option" else ""
            raise UsageError(f"{where_of(layer.label, name, key).rstrip('. ')}: no analyzer {name!r} takes "
                             f"options{did_you_mean(name, known)} (analyzers with options: "
                             f"{', '.join(known) or 'none'})")
        for key, raw in table.items():
            found = cat.spec(name, key)
            if found is None:
                keys = [s.key for s in cat.analyzers[name][1]]
                raise UsageError(f"{where_of(layer.label, name, key)}: unknown option of analyzer {name!r}"
                                 f"{did_you_mean(key, keys)} (options: {', '.join(keys)})")
            out.append((name, found, _value(found, raw, layer.text, where_of(layer.label, name, found.key))))
    return out


def resolve(cat: OptionCatalog, layers: Sequence[OptionLayer]) -> dict[str, DataclassInstance]:
    """Each analyzer's options instance from its defaults and the layers (later wins); a
    ``__post_init__`` refusal is a usage error too."""
    values: dict[str, dict[str, OptionValue]] = {name: {} for name in cat.analyzers}
    for layer in layers:
        for name, spec, value in checked(cat, layer):
            values[name][spec.attr] = value
    out: dict[str, DataclassInstance] = {}
    for name, (cls, _) in cat.analyzers.items():
        try:
            out[name] = cls(**values[name])
        except UsageError:
            raise
        except (ValueError, TypeError) as exc:
            raise UsageError(f"options of analyzer {name!r}: {exc}") from None
    return out


def parse_option_text(items: Iterable[str]) -> dict[str, dict[str, object]]:
    """``--option NAME.KEY=VALUE`` (repeatable) → ``{NAME: {KEY: VALUE}}``."""
    out: dict[str, dict[str, object]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        name, dot, key = target.strip().rpartition(".")
        if not sep or not dot or not name or not key:
            raise UsageError(f"--option {item!r}: expected NAME.KEY=VALUE (e.g. --option hotspots.top=20)")
        out.setdefault(name, {})[key] = value
    return out
