"""Which opsets the installed onnx knows — without importing onnx
when the answer is certain.

Why: the loader refuses a model whose opset is newer than the installed onnx knows
(the graph would mean something we cannot read), and a model without an ``ai.onnx``
import gets the newest opset. Asking onnx (``onnx.defs``) costs its ~0.7 s import
(:mod:`.onnxproto`). onnx never drops an opset, so every release knows at least
what its ``onnx.helper.VERSION_TABLE`` row says; the rows below are copied from that
table (``tests/test_protoscan.py`` checks them against it). An opset at or under the
row of the installed release (read from its distribution metadata, no import) is
known for certain; only a newer one makes us import onnx and ask.
"""

from __future__ import annotations

import functools

STANDARD_DOMAINS = {"": "ai.onnx", "ai.onnx": "ai.onnx", "ai.onnx.ml": "ai.onnx.ml",
                    "ai.onnx.training": "ai.onnx.training",
                    "ai.onnx.preview.training": "ai.onnx.preview.training"}

FLOORS: dict[tuple[int, int], tuple[int, int, int]] = {
    # onnx release: (ai.onnx, ai.onnx.ml, ai.onnx.preview.training)
    (1, 16): (21, 5, 1),
    (1, 17): (22, 5, 1),
    (1, 18): (23, 5, 1),
    (1, 19): (24, 5, 1),
    (1, 20): (25, 5, 1),
    (1, 21): (26, 5, 1),
    (1, 22): (27, 5, 1),
    (1, 23): (28, 5, 1),
}


@functools.lru_cache(maxsize=1)
def floor() -> dict[str, int]:
    """Opset per standard domain that the installed onnx certainly knows; empty if
    its version cannot be read or predates the table."""
    from importlib import metadata

    try:
        parts = metadata.version("onnx").split(".")
        release = (int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0))
    except (metadata.PackageNotFoundError, ValueError, IndexError):
        return {}
    rows = [k for k in FLOORS if k <= release]
    if not rows:
        return {}
    onnx_, ml, training = FLOORS[max(rows)]
    return {"ai.onnx": onnx_, "ai.onnx.ml": ml, "ai.onnx.preview.training": training}


@functools.lru_cache(maxsize=1)
def known_opsets() -> dict[str, int]:
    """Highest opset per standard domain that the installed onnx knows (imports onnx)."""
    import onnx

    out: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        dom = STANDARD_DOMAINS.get(schema.domain, schema.domain)
        out[dom] = max(out.get(dom, 0), schema.since_version)
    out["ai.onnx"] = max(out.get("ai.onnx", 0), onnx.defs.onnx_opset_version())
    return out


def latest(domain: str = "ai.onnx") -> int:
    """The opset a model without an import of ``domain`` is read at: the newest."""
    return known_opsets().get(domain, 1)
