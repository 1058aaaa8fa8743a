"""The serving analyzer's options: the device, the batch and the KV cache dtype.

Each is also a flag of ``model-analyze PATH`` and a top-level config key (``--device h100``,
``device = "h100"``), as they were before analyzers declared options; ``--option
serving.batch=8`` and ``[tool.model-analyze.plugins.serving]`` set them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_analyze.budgets import BUDGETS
from model_analyze.plugin_api import option


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
        if self.kv_dtype:  # kv.py imports the attention and token-flow engines: only when there is a dtype to check
            from .kv import parse_kv_dtype

            parse_kv_dtype(self.kv_dtype)
