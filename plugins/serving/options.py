"""The serving analyzer's options: the device, the batch and the KV cache dtype.

Each is also a flag of ``model-analyze PATH`` and a top-level config key (``--device h100``,
``device = "h100"``), as they were before analyzers declared options; ``--option
serving.batch=8`` and ``[tool.model-analyze.plugins.serving]`` set them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from model_analyze.budgets import BUDGETS
from model_analyze.errors import UsageError
from model_analyze.plugin_api import option

KV_DTYPES: dict[str, tuple[str, Fraction]] = {
    "fp32": ("float32", Fraction(4)), "float32": ("float32", Fraction(4)), "float": ("float32", Fraction(4)),
    "fp16": ("float16", Fraction(2)), "float16": ("float16", Fraction(2)), "half": ("float16", Fraction(2)),
    "bf16": ("bfloat16", Fraction(2)), "bfloat16": ("bfloat16", Fraction(2)),
    "fp8": ("float8", Fraction(1)), "float8": ("float8", Fraction(1)),
    "int8": ("int8", Fraction(1)), "uint8": ("uint8", Fraction(1)),
    "int4": ("int4", Fraction(1, 2)), "uint4": ("uint4", Fraction(1, 2)),
}
"""``--kv-dtype`` names → (label, bytes per element). Scales of a quantized cache are not counted."""


def parse_kv_dtype(text: str | None) -> tuple[str, Fraction] | None:
    if not text:
        return None
    key = text.strip().lower()
    if key not in KV_DTYPES:
        raise UsageError(f"--kv-dtype {text!r}: unknown (known: {', '.join(sorted(KV_DTYPES))})")
    return KV_DTYPES[key]


@dataclass(frozen=True)
class ServingOptions:
    device: str | None = option(None, "device for roofline lower bounds: a name (`model-analyze devices`) or "
                                      "flops=…,bandwidth=…", flag=True)
    batch: int = option(1, "sequences (or images) served together", minimum=1, maximum=BUDGETS.dim_value,
                        flag=True)
    kv_dtype: str | None = option(None, "store the KV cache as this dtype (fp16, bf16, fp8, int8, int4; "
                                        "default: the graph's)", flag=True)

    def __post_init__(self) -> None:
        """A device the table does not know, or a dtype we cannot size, is the user's error (exit 2)."""
        if self.device:
            from model_analyze.devices import resolve

            resolve(self.device)
        parse_kv_dtype(self.kv_dtype)
