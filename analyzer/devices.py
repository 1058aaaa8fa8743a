"""Hardware descriptions for roofline bounds: peak FLOP/s per dtype and memory bandwidth.

Why in the core: a device is plain data that several consumers read (the serving
analyzer's bounds, ``compare``, a plugin's budget check) and that plugins extend
through the ``model_analyze_devices`` hook; the core knows no analyzer that uses it.
A device is only ever used for *lower bounds* on time (``max(FLOPs / peak, bytes /
bandwidth)``), so every figure must be the most a device can do: dense peaks as
datasheets state them, never sustained or typical rates.

``--device NAME`` picks a device by name (or alias) from every plugin's table;
``--device flops=989e12,bandwidth=3.35e12`` describes one inline (SI suffixes
``k M G T P`` allowed, optional ``fp16=…``/``int8=…`` per-dtype peaks, ``memory=``
and ``cache=`` in bytes, ``name=``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from .manager import PluginManager

DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")
"""Keys of :attr:`Device.peak`: the dtype a matrix unit multiplies in."""


@dataclass(frozen=True)
class Device:
    """One accelerator or CPU, as its datasheet states it.

    ``peak``: dense (no structured sparsity) peak FLOP/s — or OP/s for integers —
    per dtype key of :data:`DTYPES`; ``bandwidth``: peak memory bandwidth in bytes/s;
    ``memory``: capacity in bytes; ``cache``: the last on-chip cache in bytes (a
    working set that fits there need not come from memory on every step).
    """

    name: str
    label: str
    peak: dict[str, float]
    bandwidth: float
    memory: float | None = None
    cache: float | None = None
    source: str = ""
    aliases: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def peak_for(self, dtype: str) -> tuple[float, str]:
        """The highest rate a runtime could multiply ``dtype`` matrices at, and how.

        fp32 matmuls may run on TF32 tensor cores (PyTorch and onnxruntime's CUDA
        provider can enable it), so a *lower bound* on time must assume they do.
        A dtype the table does not list takes the fastest listed rate: a bound must
        not assume the device is slower than it might be.
        """
        candidates = [dtype]
        if dtype == "fp32":
            candidates.append("tf32")
        known = [(self.peak[d], d) for d in candidates if self.peak.get(d)]
        if known:
            value, used = max(known)
            return value, used if used == dtype else f"{used} tensor cores"
        if not self.peak:
            raise ValueError(f"device {self.name!r} lists no peak rate")
        value, used = max((v, d) for d, v in self.peak.items())
        return value, f"{used}: fastest listed rate ({dtype} not listed)"


_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKMGTP]?)\s*(?:[A-Za-z/]*)\s*$")


def parse_quantity(text: str, what: str) -> float:
    """``3.35T``, ``3.35e12``, ``989 TFLOP/s`` → a float (unit words after the suffix ignored)."""
    m = _NUMBER.match(text)
    if not m:
        raise UsageError(f"--device: {what}={text!r} is not a number (e.g. 3.35e12 or 3.35T)")
    value = float(m.group(1)) * _SI[m.group(2)]
    if value <= 0:
        raise UsageError(f"--device: {what} must be positive")
    return value


def parse_spec(spec: str) -> Device:
    """An inline device: ``flops=…,bandwidth=…[,fp16=…][,memory=…][,cache=…][,name=…]``."""
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--device {spec!r}: expected NAME or flops=…,bandwidth=…")
        fields[key.strip().lower()] = value.strip()
    known = {"flops", "bandwidth", "memory", "cache", "name", *DTYPES}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UsageError(f"--device: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if "bandwidth" not in fields or not ({"flops", *DTYPES} & set(fields)):
        raise UsageError("--device: an inline device needs bandwidth= and flops= (or a per-dtype peak)")
    peak: dict[str, float] = {}
    if "flops" in fields:
        flops = parse_quantity(fields["flops"], "flops")
        peak = dict.fromkeys(DTYPES, flops)
    for d in DTYPES:
        if d in fields:
            peak[d] = parse_quantity(fields[d], d)
    return Device(fields.get("name", "custom"), fields.get("name", "custom device"), peak,
                  parse_quantity(fields["bandwidth"], "bandwidth"),
                  parse_quantity(fields["memory"], "memory") if "memory" in fields else None,
                  parse_quantity(fields["cache"], "cache") if "cache" in fields else None,
                  source="--device " + spec)


def available(pm: PluginManager | None = None) -> dict[str, Device]:
    """Every device the installed plugins describe, by lower-case name and alias."""
    from .manager import get_plugin_manager

    items, _ = (pm or get_plugin_manager()).collect("model_analyze_devices", Device)
    out: dict[str, Device] = {}
    for _, dev in items:
        for key in (dev.name, *dev.aliases):
            out.setdefault(key.lower(), dev)
    return out


def resolve(spec: str, pm: PluginManager | None = None) -> Device:
    """``--device`` → a :class:`Device`; a usage error names the known devices."""
    if "=" in spec:
        return parse_spec(spec)
    devices = available(pm)
    dev = devices.get(spec.strip().lower())
    if dev is None:
        names = sorted({d.name for d in devices.values()})
        raise UsageError(f"--device {spec!r}: unknown device (known: {', '.join(names) or 'none'}; "
                         "or give flops=…,bandwidth=…)")
    return dev
