"""The runtime oracle for the token-flow engine (``model-analyze verify``).

The engine claims, for every output element, which input positions can
influence it. Static reasoning can be wrong in ways no unit test of a single
rule shows (a composition bug, a missed path, a rule that forgets padding), so
this module checks the claim by *execution*: run the model with onnxruntime on
random inputs (several seeds), perturb one input position at a time, record
which output elements change, and compare with the prediction.

- **Soundness**: every observed change must be predicted. Prediction is at
  element level: element ``e`` depends on ``⋃_k dep_k(e_k) ∪ fixed`` of a
  source axis (``FlowState.axes[k][source]`` and ``FlowState.fixed[source]``),
  so a perturbation at source position ``p`` may change exactly the elements
  where some axis (or ``fixed``) allows ``p``. Anything else that changes is a
  violation — including outputs the engine says do not depend on the source.
- **Tightness**: on the output axis that carries the source positionally,
  the observed pairs ``(i, p)`` (some element with ``e_k = i`` changed) over
  the predicted pairs. 1.0 means the engine's answer is exactly what runs.

Why perturb whole slices: a source axis is one axis of an input, and the
engine's answer for it holds for *every* index of the input's other axes, so
changing the whole slice at ``p`` tests the claim for all of them at once.

"Changed" must not be fooled by float noise: onnxruntime on CPU is
deterministic for fixed shapes (we run single-threaded and re-run the baseline
to measure any noise), and computations that do not read a perturbed value are
bit-identical, so a change above ``8·eps(dtype)·max|output|`` (≈1e-6 relative
for float32), or above the measured noise, is real.

onnxruntime is imported lazily: the core analyzer never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .budgets import BUDGETS
from .errors import AnalyzeError
from .protoscan import hydrate

if TYPE_CHECKING:
    from .context import AnalysisContext
    from .runner import AnalyzeOptions
    from .tokenflow import Dep, FlowResult, FlowState, SourceAxis

DEFAULT_SEEDS = 2
DEFAULT_POSITIONS = 16
MAX_VIOLATIONS = 5
"""Violations kept per source × output pair (the count is always exact)."""
FALLBACK_VOCAB = 100
"""Id range for integer inputs whose embedding table cannot be found."""
MAX_EXTERNAL_BYTES = BUDGETS.external_bytes
"""External weights larger than this cannot be inlined into one protobuf."""
MAX_INPUT_ELEMENTS = BUDGETS.verify_input_elements
"""Per input: a declared size above this is refused rather than allocated (hostile dims)."""
INSTALL_HINT = "pip install 'model-analyze[verify]'"
UNSAFE_EXTERNAL = ("L010", "L011", "L012", "L013", "L016")
UNAVAILABLE_EXTERNAL = ("L014", "L015", "L017")


class VerifyError(AnalyzeError):
    """The oracle cannot run (no onnxruntime, no weights, no concrete shapes…): exit 2."""


class RunFailed(VerifyError):
    """One onnxruntime run raised (not a timeout). On a baseline it ends verify; on a
    perturbed input only that source's pairs go unchecked (a traced Longformer breaks
    when its global token is masked: its reshape was traced for one global token)."""


# -- results ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Violation:
    """An output element that changed although the engine predicts it cannot."""

    position: int
    """Perturbed source position."""
    element: tuple[int, ...]
    """Index of the changed output element."""
    seed: int
    delta: float
    """``|perturbed - baseline|`` at that element (1.0 for non-float outputs)."""


@dataclass
class PairResult:
    """The verdict for one source axis × one output tensor."""

    source: SourceAxis
    output: str
    axis: int | None
    """Output axis the tightness pairs are counted on (None: position-free,
    one row — "does p influence this output at all")."""
    source_length: int
    positions: list[int]
    """Probed source positions (columns of the matrices below)."""
    seeds: list[int]
    observed_matrix: np.ndarray = field(repr=False)
    """``[rows, len(positions)]``: row ``i`` (index along ``axis``) changed when
    position ``positions[j]`` was perturbed, under any seed."""
    predicted_matrix: np.ndarray = field(repr=False)
    violations: list[Violation] = field(default_factory=list)
    violation_count: int = 0
    error: str | None = None
    """Why the prediction could not be evaluated (the pair is then unchecked)."""

    @property
    def label(self) -> str:
        return f"{self.source[0]}[{self.source[1]}]"

    @property
    def checked(self) -> bool:
        return self.error is None

    @property
    def sound(self) -> bool:
        return self.error is None and self.violation_count == 0

    @property
    def observed(self) -> int:
        return int(self.observed_matrix.sum())

    @property
    def predicted(self) -> int:
        return int(self.predicted_matrix.sum())

    @property
    def tightness(self) -> float | None:
        """Observed / predicted pairs (None when nothing is predicted or observed).

        Unpredicted observations (violations) count in the denominator too, so
        the ratio stays in [0, 1] even for an unsound answer."""
        pred = int((self.predicted_matrix | self.observed_matrix).sum())
        return None if pred == 0 else self.observed / pred

    def _row(self, matrix: np.ndarray, i: int) -> list[int]:
        if matrix.shape[0] == 0:
            return []
        row = matrix[i if self.axis is not None else 0]
        return [p for p, hit in zip(self.positions, row, strict=True) if hit]

    def observed_at(self, i: int) -> list[int]:
        """Probed source positions observed to influence row ``i`` of the output axis."""
        return self._row(self.observed_matrix, i)

    def predicted_at(self, i: int) -> list[int]:
        """Probed source positions the engine says can influence row ``i``."""
        return self._row(self.predicted_matrix, i)

    def as_dict(self) -> dict[str, Any]:
        t = self.tightness
        return {
            "source": self.label, "output": self.output, "axis": self.axis,
            "source_length": self.source_length, "positions_probed": len(self.positions),
            "positions": self.positions, "seeds": self.seeds, "sound": self.sound,
            "checked": self.checked, "error": self.error, "observed": self.observed,
            "predicted": self.predicted, "tightness": None if t is None else round(t, 4),
            "violation_count": self.violation_count,
            "violations": [{"position": v.position, "element": list(v.element), "seed": v.seed,
                            "delta": v.delta} for v in self.violations],
        }


@dataclass
class VerifyResult:
    """Everything one ``verify`` run found."""

    model: str
    bindings: dict[str, int]
    seeds: list[int]
    runs: int
    inputs: dict[str, str]
    """How each input was synthesised (for the report)."""
    pairs: list[PairResult]
    tolerances: dict[str, float]
    """Per output: the absolute change above which an element counts as changed."""
    noise: float
    """Largest difference between two identical baseline runs (0 when deterministic)."""
    unknown_ops: dict[str, int] = field(default_factory=dict)
    rule_errors: dict[str, str] = field(default_factory=dict)
    runtime: str = ""
    config: list[str] = field(default_factory=list)
    """The config file and overrides whose bindings applied (``verify`` fills it)."""
    notes: list[str] = field(default_factory=list)
    """Config bindings this model has no use for, skipped (C001 messages)."""

    @property
    def sound(self) -> bool:
        """No violation anywhere (unchecked pairs make the run incomplete, not unsound)."""
        return all(p.violation_count == 0 for p in self.pairs)

    @property
    def complete(self) -> bool:
        return all(p.checked for p in self.pairs)

    def pair(self, source: SourceAxis | str, output: str) -> PairResult:
        """The result for ``source`` (``(input, axis)`` or ``"input[axis]"``) × ``output``."""
        for p in self.pairs:
            if (p.source == source or p.label == source) and p.output == output:
                return p
        raise KeyError(f"no result for {source} × {output}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "runtime": self.runtime, "bindings": self.bindings,
            "seeds": self.seeds, "runs": self.runs, "inputs": self.inputs, "sound": self.sound,
            "complete": self.complete, "noise": self.noise, "tolerances": self.tolerances,
            "unknown_ops": self.unknown_ops, "rule_errors": self.rule_errors, "config": self.config,
            "skipped": self.notes,
            "results": [p.as_dict() for p in self.pairs],
        }


# -- onnxruntime ---------------------------------------------------------------------
def load_onnxruntime() -> Any:
    """Import onnxruntime or say how to install it (one line, exit 2)."""
    try:
        import onnxruntime
    except ImportError:
        raise VerifyError(f"verify needs onnxruntime, which is not installed: {INSTALL_HINT}") from None
    return onnxruntime


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def runnable_proto(ctx: AnalysisContext, extra_outputs: Sequence[str]) -> bytes:
    """The model as onnxruntime should run it: our (function-inlined) proto with
    ``extra_outputs`` exposed, weights attached.

    Why we check external data ourselves: onnxruntime would happily follow an
    absolute or ``..`` location; the loader already flagged those, and we refuse
    to run them. A missing data file means the weights are not here — nothing to
    execute.
    """
    import onnx
    from onnx import helper

    from .safeio import UnsafeData, inline_external_data

    bad = [f for f in ctx.model.findings if f.code in UNSAFE_EXTERNAL]
    if bad:
        raise VerifyError(f"{ctx.model.path}: refusing to run: {bad[0].message} ({bad[0].code})")
    missing = [f for f in ctx.model.findings if f.code in UNAVAILABLE_EXTERNAL]
    if missing:
        raise VerifyError(f"{ctx.model.path}: the weights are not available ({missing[0].message.split(';')[0]}); "
                          "verify executes the model and needs them")
    check_budgets(ctx)
    model = onnx.ModelProto()
    model.CopyFrom(ctx.model.proto)
    try:  # weights the loader left in the model file (``protoscan``) are read back now
        hydrate(model, ctx.model.embedded, MAX_EXTERNAL_BYTES)
    except ValueError as exc:
        raise VerifyError(f"{ctx.model.path}: cannot read the weights: {exc}") from None
    have = {o.name for o in model.graph.output}
    for name in extra_outputs:
        if name in have:
            continue
        dtype = ctx.shapes.dtype(name)
        if dtype is None:
            raise VerifyError(f"--output {name!r}: the element type of this tensor is unknown")
        model.graph.output.append(helper.make_tensor_value_info(name, dtype, None))
    if ctx.model.external:
        # One protobuf holds graph and weights: its 2 GiB limit bounds what may be read.
        budget = min(MAX_EXTERNAL_BYTES, (1 << 31) - 1 - model.ByteSize() - (1 << 20))
        try:
            inline_external_data(model, ctx.model.base_dir, budget)
        except UnsafeData as exc:
            raise VerifyError(f"{ctx.model.path}: cannot read external weights: {exc.message} ({exc.code})") from None
    try:
        return model.SerializeToString()
    except Exception as exc:  # protobuf refuses messages over 2 GiB
        raise VerifyError(f"{ctx.model.path}: the model with its weights cannot be handed to onnxruntime: "
                          f"{_first_line(exc)}") from None


def check_budgets(ctx: AnalysisContext) -> None:
    """Refuse, before running anything, a model that would run ``Loop`` bodies
    more than :attr:`~.budgets.Budgets.verify_loop_trips` times or hold a tensor
    over :attr:`~.budgets.Budgets.verify_tensor_elements` at the bindings."""
    for node in ctx.graph.walk():
        if node.op_type == "Loop" and not node.domain and node.input(0):
            trips = ctx.shapes.values.get(node.input(0))
            if trips is None:
                arr = node.graph.constant_value(node.input(0), 1)
                trips = tuple(arr.reshape(-1).tolist()) if arr is not None and arr.size == 1 else None
            m = ctx.evaluate(trips[0]) if trips else None
            if isinstance(m, (int, float)) and m > BUDGETS.verify_loop_trips:
                raise VerifyError(f"{ctx.model.path}: Loop {node.name!r} runs {int(m):,} times, more than verify "
                                  f"runs ({BUDGETS.verify_loop_trips:,})")
    for name, t in ctx.shapes.types.items():
        if t.shape is None:
            continue
        n = 1
        for d in t.shape:
            v = ctx.evaluate(d) if d is not None else None
            if isinstance(v, (int, float)) and v > 0:
                n *= int(v)
        if n > BUDGETS.verify_tensor_elements:
            raise VerifyError(f"{ctx.model.path}: tensor {name!r} would hold {n:,} elements at these bindings "
                              f"(verify runs models up to {BUDGETS.verify_tensor_elements:,}); bind smaller dims")


class Runtime:
    """One onnxruntime session, single-threaded so runs are reproducible."""

    def __init__(self, ctx: AnalysisContext, outputs: Sequence[str]) -> None:
        ort = load_onnxruntime()
        self.version = f"onnxruntime {ort.__version__}"
        graph_outputs = set(ctx.graph.outputs)
        payload = runnable_proto(ctx, [o for o in outputs if o not in graph_outputs])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4  # our one-line error says it; ORT's own log would be a second line
        ort.set_default_logger_severity(4)
        # Basic optimisations (constant folding, dead-node removal) are exact; the
        # fusions of higher levels may change rounding, which we do not want here.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        try:
            self.session = ort.InferenceSession(payload, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise VerifyError(f"{ctx.model.path}: onnxruntime cannot load this model: {_first_line(exc)}") from None
        self.outputs = list(outputs)
        self.path = ctx.model.path
        self.runs = 0

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One run, aborted after ``verify_run_seconds`` (a loop whose trip count
        comes from data cannot be bounded before it runs)."""
        import threading

        import onnxruntime as ort

        self.runs += 1
        options = ort.RunOptions()
        timer = threading.Timer(BUDGETS.verify_run_seconds, lambda: setattr(options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            return [np.asarray(a) for a in self.session.run(self.outputs, feeds, options)]
        except Exception as exc:
            if options.terminate:
                raise VerifyError(f"{self.path}: one onnxruntime run took more than "
                                  f"{BUDGETS.verify_run_seconds:g} s; aborted") from None
            raise RunFailed(f"{self.path}: onnxruntime failed to run the model on synthetic inputs: "
                            f"{_first_line(exc)}") from None
        finally:
            timer.cancel()


# -- inputs ------------------------------------------------------------------------------
@dataclass
class InputSpec:
    """How to fill and perturb one graph input.

    ``kind``: ``float`` (N(0,1), perturbed by adding noise), ``ids`` (token ids
    in ``[0, vocab)``, perturbed by changing the id), ``mask`` (all ones,
    perturbed by setting to 0).
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    kind: str
    vocab: int = 0

    def describe(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        what = {"float": "N(0,1), perturbed by adding N(0,1)",
                "ids": f"random ids in [0, {self.vocab}), perturbed by changing the id",
                "mask": "all ones, perturbed by setting to 0"}[self.kind]
        return f"{self.dtype.name}[{dims}] {what}"

    def baseline(self, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "mask":
            return np.ones(self.shape, dtype=self.dtype)
        if self.kind == "ids":
            return rng.integers(0, self.vocab, size=self.shape).astype(self.dtype)
        return rng.standard_normal(self.shape).astype(self.dtype)

    def perturb(self, base: np.ndarray, axis: int, p: int, rng: np.random.Generator) -> np.ndarray:
        out = base.copy()
        index: list[Any] = [slice(None)] * base.ndim
        index[axis] = p
        where = tuple(index)
        if self.kind == "mask":
            out[where] = 0
        elif self.kind == "ids":
            part = out[where]
            shift = rng.integers(1, self.vocab, size=np.shape(part))
            out[where] = ((part.astype(np.int64) + shift) % self.vocab).astype(self.dtype)
        else:
            out[where] = out[where] + rng.standard_normal(np.shape(out[where])).astype(self.dtype)
        return out


_PASS_THROUGH = {"Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten"}


def embedding_rows(ctx: AnalysisContext, name: str) -> int | None:
    """Rows of the smallest table that ``name`` indexes through a Gather (ids
    must be valid for every table they index), following shape-only ops."""
    rows: list[int] = []
    frontier, seen = [name], {name}
    while frontier:
        tensor = frontier.pop()
        for node in ctx.graph.consumers(tensor):
            if node.op_type == "Gather" and node.input(1) == tensor:
                shape = ctx.shapes.shape(node.input(0))
                axis = int(node.attr("axis", 0) or 0)
                if shape is not None and -len(shape) <= axis < len(shape):
                    v = ctx.evaluate(shape[axis])
                    if isinstance(v, int) and v > 0:
                        rows.append(v)
            elif node.op_type in _PASS_THROUGH and node.input(0) == tensor:
                for out in node.outputs:
                    if out and out not in seen:
                        seen.add(out)
                        frontier.append(out)
    return min(rows) if rows else None


def input_specs(ctx: AnalysisContext) -> list[InputSpec]:
    """Concrete shape, dtype and filling of every graph input, at the bindings."""
    from onnx import TensorProto, helper

    specs = []
    for name in ctx.graph.inputs:
        t = ctx.shapes.type(name)
        if t is None or t.dtype is None or t.shape is None:
            raise VerifyError(f"input {name!r}: unknown type or rank; give it with --input-shape {name}=D1,D2,...")
        dims = []
        for d in t.shape:
            v = ctx.evaluate(d)
            if not isinstance(v, int):
                raise VerifyError(f"input {name!r}: dim {d} has no concrete value; bind it with --dim or "
                                  f"--input-shape {name}=D1,D2,...")
            dims.append(v)
        if int(np.prod(dims)) > MAX_INPUT_ELEMENTS:
            raise VerifyError(f"input {name!r}: {int(np.prod(dims)):,} elements at these bindings is too many "
                              "to run repeatedly; bind smaller dims (--dim, --seq-len, --input-shape)")
        if t.dtype == TensorProto.STRING:
            raise VerifyError(f"input {name!r}: string inputs cannot be synthesised")
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.dtype))
        except Exception:
            raise VerifyError(f"input {name!r}: element type {t.dtype} cannot be synthesised") from None
        if dtype.kind == "b" or (dtype.kind in "iu" and "mask" in name.lower()):
            kind, vocab = "mask", 0
        elif dtype.kind in "iu":
            kind, vocab = "ids", embedding_rows(ctx, name) or FALLBACK_VOCAB
            if dtype.kind == "u" or dtype.itemsize < 8:
                vocab = min(vocab, int(np.iinfo(dtype).max) + 1)
        elif dtype.kind in "fc":
            kind, vocab = "float", 0
        else:
            raise VerifyError(f"input {name!r}: element type {dtype} cannot be synthesised")
        if kind == "ids" and vocab < 2:
            raise VerifyError(f"input {name!r}: indexes a table of {vocab} row(s); nothing to perturb")
        specs.append(InputSpec(name, tuple(dims), dtype, kind, vocab))
    return specs


# -- prediction ----------------------------------------------------------------------
def probe_positions(n: int, budget: int) -> list[int]:
    """Positions to perturb: all when ``n <= budget``; else both borders (and
    their neighbours, where padding effects live) plus evenly spaced interior ones."""
    if n <= 0:
        return []
    if budget <= 0 or n <= budget:
        return list(range(n))
    picks = {0, 1, n - 2, n - 1}
    rest = max(budget - len(picks), 1)
    picks |= {round(k * (n - 1) / (rest + 1)) for k in range(1, rest + 1)}
    return sorted(p for p in picks if 0 <= p < n)


def _position_free(dep: Dep) -> bool:
    """True when ``dep`` gives the same set for every position (evaluate once)."""
    from .tokenflow.deps import Band

    if not isinstance(dep, Band):
        return False
    return all(t.s == 0 for t in (dep.lo or ()) + (dep.hi or ()))


def _members(dep: Dep, i: int, n: int, probes: np.ndarray, env: dict[str, int]) -> np.ndarray:
    hit = np.zeros(len(probes), dtype=bool)
    for lo, hi in dep.at(i, n, env):
        hit |= (probes >= lo) & (probes <= hi)
    return hit


class Prediction:
    """What the engine claims for one (output, source) pair, evaluated at the probes.

    ``fixed[j]``: every element may depend on ``probes[j]``; ``axes[k]``: a
    ``[rows, n_probes]`` matrix, row ``i`` = may an element with ``e_k = i``
    depend on ``probes[j]`` (one row when the dependency is position-free).
    """

    def __init__(self, state: FlowState | None, source: SourceAxis, n: int, probes: list[int],
                 out_shape: tuple[int, ...], env: dict[str, int]) -> None:
        pr = np.asarray(probes, dtype=np.int64)
        self.fixed = np.zeros(len(pr), dtype=bool)
        self.axes: list[np.ndarray | None] = [None] * len(out_shape)
        if state is None:
            raise ValueError("the engine has no state for this tensor")
        if source in state.fixed:
            self.fixed = _members(state.fixed[source], 0, n, pr, env)
        if state.axes is None:
            return
        if len(state.axes) != len(out_shape):
            raise ValueError(f"the engine has rank {len(state.axes)}, the runtime output rank {len(out_shape)}")
        for k, ax in enumerate(state.axes):
            dep = ax.get(source)
            if dep is None:
                continue
            if _position_free(dep):
                self.axes[k] = _members(dep, 0, n, pr, env)[None, :]
            else:
                self.axes[k] = np.stack([_members(dep, i, n, pr, env) for i in range(out_shape[k])]) \
                    if out_shape[k] else np.zeros((0, len(pr)), dtype=bool)

    def allowed(self, j: int, shape: tuple[int, ...]) -> np.ndarray:
        """Elements of the output that may change when ``probes[j]`` is perturbed."""
        out = np.full(shape, bool(self.fixed[j]))
        for k, m in enumerate(self.axes):
            if m is None:
                continue
            view = [1] * len(shape)
            view[k] = m.shape[0]
            out |= m[:, j].reshape(view)
        return out


def project(mask: np.ndarray, axis: int | None) -> np.ndarray:
    """Rows along ``axis`` where any element is set (one row when axis is None)."""
    if axis is None:
        return np.asarray([mask.any()])
    others = tuple(k for k in range(mask.ndim) if k != axis)
    return np.asarray(mask.any(axis=others)) if others else mask


def tightness_axis(result: FlowResult, tensor: str, source: SourceAxis) -> int | None:
    """The output axis to count tightness pairs on.

    The axis that carries ``source`` positionally; else one whose dependency on
    it is whole-axis (bidirectional attention: still the token axis); failing
    that (e.g. a mask the engine only knows reaches "everything", in ``fixed``),
    an axis that carries another source of the same symbolic length — so
    tightness compares per-position answers instead of collapsing to "any
    influence at all".
    """
    from .tokenflow.query import positional_axes

    def carrying(src: SourceAxis) -> int | None:
        axes = positional_axes(result, tensor, src)
        if axes:
            return axes[0]
        st = result.states.get(tensor)
        for k, ax in enumerate(st.axes or ()) if st is not None else ():
            if src in ax:
                return k
        return None

    axis = carrying(source)
    if axis is not None:
        return axis
    length = result.sources[source].length
    for other, info in result.sources.items():
        if other != source and length is not None and info.length == length:
            axis = carrying(other)
            if axis is not None:
                return axis
    return None


def changed(base: np.ndarray, new: np.ndarray, tol: float) -> np.ndarray:
    """Elements that differ by more than ``tol`` (exactly, for non-float outputs)."""
    if base.dtype.kind not in "fc":
        return np.asarray(base != new)
    with np.errstate(invalid="ignore", over="ignore"):
        same = (base == new) | (np.isnan(base) & np.isnan(new)) | (np.abs(new - base) <= tol)
    return ~same


def tolerance(base: np.ndarray, noise: float) -> float:
    """``8·eps·max|base|`` (≈1e-6 relative for float32), or 8× the measured noise."""
    if base.dtype.kind not in "fc" or base.size == 0:
        return 0.0
    finite = np.abs(base[np.isfinite(base)])
    scale = float(finite.max()) if finite.size else 0.0
    eps = float(np.finfo(base.dtype).eps)
    return max(8 * eps * scale, 8 * noise, float(np.finfo(np.float32).tiny))


# -- the oracle -------------------------------------------------------------------------
@dataclass
class _Pair:
    """Mutable accumulator behind a :class:`PairResult`."""

    result: PairResult
    prediction: Prediction | None
    out_index: int


def verify(ctx: AnalysisContext, outputs: Sequence[str] | None = None, seeds: int = DEFAULT_SEEDS,
           positions: int = DEFAULT_POSITIONS) -> VerifyResult:
    """Check the engine's answer for ``outputs`` (default: the graph outputs)
    against onnxruntime, perturbing up to ``positions`` positions per source
    axis under ``seeds`` random baselines."""
    from .tokenflow import flow

    if not 1 <= seeds <= BUDGETS.verify_seeds:
        raise VerifyError(f"--seeds must be between 1 and {BUDGETS.verify_seeds:,}")
    if not 1 <= positions <= BUDGETS.verify_positions:
        raise VerifyError(f"--positions must be between 1 and {BUDGETS.verify_positions:,}")
    outputs = list(dict.fromkeys(outputs or ctx.graph.outputs))
    for name in outputs:
        if name not in ctx.graph.outputs and ctx.graph.producer(name) is None:
            raise VerifyError(f"--output {name!r}: no tensor of that name is computed in the main graph")
    specs = {s.name: s for s in input_specs(ctx)}
    runtime = Runtime(ctx, outputs)  # fails fast (no onnxruntime / no weights) before the engine runs
    result = flow(ctx)
    env = ctx.bindings
    seed_list = list(range(seeds))
    sources = [s for s in result.sources if s[0] in specs and 0 <= s[1] < len(specs[s[0]].shape)]
    probes = {s: probe_positions(specs[s[0]].shape[s[1]], positions) for s in sources}

    pairs: list[_Pair] = []
    noise = 0.0
    tolerances: dict[str, float] = {}
    for seed in seed_list:
        rng = np.random.default_rng(seed)
        feeds = {name: spec.baseline(rng) for name, spec in specs.items()}
        base = runtime(feeds)
        again = runtime(feeds)
        for b, a in zip(base, again, strict=True):
            if b.dtype.kind in "fc" and b.size:
                with np.errstate(invalid="ignore"):
                    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
                noise = max(noise, float(np.nanmax(d)) if np.isfinite(d).any() else 0.0)
        tols = [tolerance(b, noise) for b in base]
        for name, tol in zip(outputs, tols, strict=True):
            tolerances[name] = max(tolerances.get(name, 0.0), tol)
        if not pairs:
            pairs = _make_pairs(result, sources, probes, specs, outputs, base, seed_list, env)
        for source in sources:
            spec = specs[source[0]]
            mine = [p for p in pairs if p.result.source == source]
            for j, pos in enumerate(probes[source]):
                perturbed = dict(feeds)
                perturbed[spec.name] = spec.perturb(feeds[spec.name], source[1], pos, rng)
                try:
                    outs = runtime(perturbed)
                except RunFailed as exc:
                    _failed_run(mine, spec, source, pos, exc)
                    continue
                for pair in mine:
                    _record(pair, j, pos, seed, base[pair.out_index], outs[pair.out_index],
                            tols[pair.out_index])
    return VerifyResult(
        model=ctx.model.path, bindings=dict(env), seeds=seed_list, runs=runtime.runs,
        inputs={n: s.describe() for n, s in specs.items()}, pairs=[p.result for p in pairs],
        tolerances=tolerances, noise=noise, unknown_ops=dict(result.unknown_ops),
        rule_errors=dict(result.rule_errors), runtime=runtime.version,
        notes=[f.message for f in ctx.model.findings if f.code == "C001"])


def _make_pairs(result: FlowResult, sources: list[SourceAxis], probes: dict[SourceAxis, list[int]],
                specs: dict[str, InputSpec], outputs: list[str], base: list[np.ndarray], seeds: list[int],
                env: dict[str, int]) -> list[_Pair]:
    pairs = []
    for source in sources:
        n = specs[source[0]].shape[source[1]]
        cols = probes[source]
        for k, name in enumerate(outputs):
            shape = tuple(base[k].shape)
            axis = tightness_axis(result, name, source)
            if axis is not None and axis >= len(shape):
                axis = None
            rows = shape[axis] if axis is not None else 1
            error, prediction = None, None
            try:
                prediction = Prediction(result.states.get(name), source, n, cols, shape, env)
            except Exception as exc:  # an unevaluable prediction is reported, never a crash
                error = f"cannot evaluate the prediction: {type(exc).__name__}: {exc}"
            res = PairResult(source, name, axis, n, cols, seeds,
                             np.zeros((rows, len(cols)), dtype=bool), np.zeros((rows, len(cols)), dtype=bool),
                             error=error)
            if prediction is not None:
                for j in range(len(cols)):
                    res.predicted_matrix[:, j] = project(prediction.allowed(j, shape), axis)
            pairs.append(_Pair(res, prediction, k))
    return pairs


def _failed_run(pairs: list[_Pair], spec: InputSpec, source: SourceAxis, pos: int, exc: RunFailed) -> None:
    """The runtime refused this perturbation: the source's pairs are unchecked (their
    other positions are still observed), and the first such run is named."""
    why = str(exc).split("synthetic inputs: ", 1)[-1]
    for pair in pairs:
        pair.result.error = pair.result.error or (
            f"onnxruntime failed with {source[0]}[{source[1]}] position {pos} perturbed "
            f"({'set to 0' if spec.kind == 'mask' else 'changed'}): {why}")


def _record(pair: _Pair, j: int, pos: int, seed: int, base: np.ndarray, new: np.ndarray, tol: float) -> None:
    res = pair.result
    if new.shape != base.shape:
        res.error = res.error or f"output shape changed under perturbation: {base.shape} → {new.shape}"
        return
    diff = changed(base, new, tol)
    if not diff.any():
        return
    res.observed_matrix[:, j] |= project(diff, res.axis)
    if pair.prediction is None:
        return
    bad = diff & ~pair.prediction.allowed(j, base.shape)
    count = int(bad.sum())
    if not count:
        return
    res.violation_count += count
    for idx in np.argwhere(bad)[: max(0, MAX_VIOLATIONS - len(res.violations))]:
        element = tuple(int(x) for x in idx)
        delta = float(abs(new[element] - base[element])) if base.dtype.kind in "fc" else 1.0
        res.violations.append(Violation(pos, element, seed, delta))


def verify_model(path: str, options: AnalyzeOptions | None = None, outputs: Sequence[str] | None = None,
                 seeds: int = DEFAULT_SEEDS, positions: int = DEFAULT_POSITIONS) -> VerifyResult:
    """Load ``path`` (``runner.prepare``) and :func:`verify` it."""
    from .runner import prepare

    load_onnxruntime()  # say "install onnxruntime" before spending time on the model
    return verify(prepare(path, options), outputs, seeds, positions)
