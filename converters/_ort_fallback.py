"""ONNX Runtime int8 failures handled per node: find the node(s) behind a quantizer error and work around them.

``quantize_per_node`` runs an attempt (quantize, then load the result and run one sample). When the attempt
raises, the nodes responsible are looked for in ONNX Runtime's own traceback (the weight, bias or tensor its
quantizer was processing, or node / tensor names in the message); when it names none, they are bisected over
the graph's weighted nodes. Those nodes first get per-tensor weights (a ``TensorQuantOverrides`` entry for
their weights), and if that is not enough are kept in float (``nodes_to_exclude``). Each step is bounded in
tries and time; when nothing works the error quotes ONNX Runtime's own message.
"""
from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import ConversionError, first_line
from edgekit.specs import QuantizerFallback

#: ops whose weights ONNX Runtime quantizes; the candidates when the traceback names no node
_WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "Attention", "EmbedLayerNormalization"}
#: locals of ONNX Runtime's quantizer frames that hold the tensor being processed
_TENSOR_LOCALS = ("weight_name", "bias_name", "tensor_name", "input_name")
_QDQ_SUFFIXES = ("_QuantizeLinear", "_DequantizeLinear", "_DequantizeLinear_Output", "_quantized")
MAX_TRIES = 16
#: how ONNX Runtime's messages quote a node or tensor: Node (name), Name:'name', 'name'
_NAMED = re.compile(r"Node \(([^()]+)\)|Name:\s*'([^']+)'|'([^']+)'")


@dataclass
class Plan:
    """What the next attempt does differently: per-tensor weights and float nodes, each with its reason."""

    per_tensor: dict[str, str] = field(default_factory=dict)  # node -> ONNX Runtime's message that led to it
    excluded: dict[str, str] = field(default_factory=dict)

    def overrides(self, graph: Graph) -> dict[str, list[dict[str, Any]]]:
        """``TensorQuantOverrides`` asking per-tensor quantization of every weight of the per-tensor nodes."""
        return {w: [{}] for node in self.per_tensor for w in graph.weights.get(node, ())}

    def fallbacks(self, graph: Graph) -> list[QuantizerFallback]:
        done = [QuantizerFallback(node=n, op_type=graph.op_types[n], reason=r, action="per-tensor weights")
                for n, r in self.per_tensor.items() if n not in self.excluded]
        return done + [QuantizerFallback(node=n, op_type=graph.op_types[n], reason=r, action="kept in float")
                       for n, r in self.excluded.items()]


class Graph:
    """The names ONNX Runtime's messages can mention, mapped to the graph's nodes."""

    def __init__(self, model: Any) -> None:
        graph = model.graph
        floats = {i.name for i in graph.initializer if i.data_type in (1, 10, 11, 16) and len(i.dims) >= 2}
        self.order = [n.name for n in graph.node if n.name]
        self.op_types = {n.name: n.op_type for n in graph.node if n.name}
        self.weights = {n.name: tuple(i for i in n.input if i in floats) for n in graph.node if n.name}
        self.users: dict[str, list[str]] = {}  # tensor -> nodes that read or write it
        for node in graph.node:
            for tensor in [*node.input, *node.output]:
                self.users.setdefault(tensor, []).append(node.name)

    def weighted(self) -> list[str]:
        return [n for n in self.order if self.op_types[n] in _WEIGHTED or self.weights[n]]

    def named_by(self, exc: BaseException) -> list[str]:
        """Nodes that ONNX Runtime's traceback or message names, innermost first."""
        found: list[str] = []
        for frame_locals in reversed(_quantizer_frames(exc)):
            node = frame_locals.get("node")
            tensors = [frame_locals[k] for k in _TENSOR_LOCALS if isinstance(frame_locals.get(k), str)]
            if tensors or hasattr(node, "op_type"):
                found += [node.name] if hasattr(node, "op_type") and node.name in self.op_types else []
                found += [n for t in tensors for n in self._of_tensor(t)]
                break  # the innermost frame that names something; outer frames hold stale loop variables
        for token in _NAMED.findall(str(exc)):
            token = next(t for t in token if t)
            found += [token] if token in self.op_types else self._of_tensor(token)
        return list(dict.fromkeys(found))

    def _of_tensor(self, tensor: str) -> list[str]:
        for suffix in _QDQ_SUFFIXES:
            if tensor.endswith(suffix) and tensor not in self.users:
                tensor = tensor[: -len(suffix)]
        return list(self.users.get(tensor, ()))


def _quantizer_frames(exc: BaseException) -> list[dict[str, Any]]:
    """Locals of the traceback's frames inside onnxruntime.quantization, outermost first."""
    frames, tb = [], exc.__traceback__
    while tb is not None:
        if "onnxruntime/quantization" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            frames.append(dict(tb.tb_frame.f_locals))
        tb = tb.tb_next
    return frames


def in_calibration(exc: BaseException) -> bool:
    """The error came from running the model on the calibration samples, not from quantizing a node."""
    names = [f.name for f in traceback.extract_tb(exc.__traceback__)]
    return "collect_data" in names or "get_next" in names


def quantize_per_node(attempt: Callable[[Plan], None], graph: Graph, per_channel: bool, budget_s: float | None = None,
                      max_tries: int = MAX_TRIES) -> list[QuantizerFallback]:
    """Run ``attempt`` until it succeeds, working around the nodes its errors point at; the fallbacks it took.

    Tries are bounded by ``max_tries`` and by ``budget_s`` seconds (default: 8 times the first try, at least 60 s).
    """
    search = _Search(attempt, graph, per_channel, max_tries, budget_s)
    plan, previous = Plan(), None
    while True:
        error = search.run(plan)
        if error is None:
            return plan.fallbacks(graph)
        if in_calibration(error):
            raise _calibration_error(error) from error
        reason, tried = first_line(error, 300), Plan(dict(plan.per_tensor), dict(plan.excluded))
        if search.exhausted():
            raise _honest_error(error, tried, graph, search) from error
        if previous is not None and reason == previous[0]:
            plan = previous[1]  # the change for the named nodes did not help: undo it, bisect instead
            changed, previous = search.bisect(reason, plan), None
        elif search.named(error, reason, plan):
            changed, previous = True, (reason, tried)
        else:
            changed, previous = search.bisect(reason, plan), None
        if not changed:
            raise _honest_error(error, tried, graph, search) from error


class _Search:
    """The attempts of one quantization, counted and timed."""

    def __init__(self, attempt: Callable[[Plan], None], graph: Graph, per_channel: bool, max_tries: int,
                 budget_s: float | None) -> None:
        self.attempt, self.graph, self.per_channel = attempt, graph, per_channel
        self.max_tries, self.budget_s, self.tries, self.bisected = max_tries, budget_s, 0, False
        self.started = time.perf_counter()

    def run(self, plan: Plan) -> BaseException | None:
        """The attempt's error, or None when it succeeded."""
        self.tries += 1
        try:
            self.attempt(plan)
        except ConversionError:
            raise
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's quantizer raises any exception type
            if self.budget_s is None:
                self.budget_s = max(60.0, 8 * (time.perf_counter() - self.started))
            return exc
        return None

    def exhausted(self) -> bool:
        return self.tries >= self.max_tries or time.perf_counter() - self.started > (self.budget_s or 0)

    def named(self, error: BaseException, reason: str, plan: Plan) -> bool:
        """Per-tensor weights (else float) for the nodes ``error`` names; False when it names no new one."""
        nodes = [n for n in self.graph.named_by(error) if n not in plan.excluded]
        for node in nodes:
            if self.per_channel and self.graph.weights[node] and node not in plan.per_tensor:
                plan.per_tensor[node] = reason
            else:
                plan.excluded[node] = reason
        return bool(nodes)

    def bisect(self, reason: str, plan: Plan) -> bool:
        """The fewest weighted nodes whose per-tensor weights (else float) make the attempt succeed, added to ``plan``."""
        self.bisected = True
        candidates = [n for n in self.graph.weighted() if n not in plan.excluded]
        if self.per_channel:
            fresh = [n for n in candidates if n not in plan.per_tensor and self.graph.weights[n]]
            culprits = self._fewest(fresh, lambda nodes: Plan({**plan.per_tensor, **dict.fromkeys(nodes, reason)},
                                                              dict(plan.excluded)))
            if culprits:
                plan.per_tensor.update(dict.fromkeys(culprits, reason))
                return True
        culprits = self._fewest(candidates, lambda nodes: Plan(dict(plan.per_tensor),
                                                               {**plan.excluded, **dict.fromkeys(nodes, reason)}))
        plan.excluded.update(dict.fromkeys(culprits, reason))
        return bool(culprits)

    def _fewest(self, nodes: list[str], plan_for: Callable[[list[str]], Plan]) -> list[str]:
        """A minimal set of ``nodes`` whose plan succeeds, by bisection over prefixes (empty when none is found).

        With ``chosen`` fixed, the smallest prefix ``pool[:k]`` that succeeds together with it ends in a node
        the fix needs: that node is chosen, and the search goes on over the nodes before it.
        """
        if not nodes or self.exhausted() or self.run(plan_for(nodes)) is not None:
            return []
        chosen: list[str] = []
        pool = list(nodes)
        while pool and not self.exhausted():
            low, high = 0, len(pool)  # pool[:high] + chosen succeeds; pool[:low] + chosen fails
            while high - low > 1 and not self.exhausted():
                middle = (low + high) // 2
                low, high = (low, middle) if self.run(plan_for([*pool[:middle], *chosen])) is None else (middle, high)
            if high - low > 1:
                return []  # out of tries before the search ended
            chosen.append(pool[high - 1])
            pool = pool[: high - 1]
            if not pool or self.run(plan_for(chosen)) is None:
                return chosen
        return []


def _honest_error(exc: BaseException, tried: Plan, graph: Graph, search: _Search) -> ConversionError:
    """ONNX Runtime's own message, where it failed, and what was tried before giving up."""
    done = [f"{n} per-tensor" for n in tried.per_tensor if n not in tried.excluded] + [f"{n} in float" for n in tried.excluded]
    steps = ([f"with {', '.join(done[:4])}{' ...' if len(done) > 4 else ''}"] if done else []) + (
        [f"bisecting over {len(graph.weighted())} weighted nodes"] if search.bisected else [])
    named = graph.named_by(exc)
    where = f" at {', '.join(named[:3])}" if named else ""
    return ConversionError(
        f"ONNX Runtime int8 quantization failed{where}: {type(exc).__name__}: {first_line(exc, 300)}"
        + (f" (after {search.tries} tries, {' and '.join(steps)})" if steps else ""),
        "ONNX Runtime's quantizer cannot handle this graph: build the ONNX artifact at fp16 or fp32, or int8 through "
        "OpenVINO (NNCF); keeping the nodes named above in float (--float-layers) may help",
        detail="".join(traceback.format_exception(exc)),
    )


def _calibration_error(exc: BaseException) -> ConversionError:
    return ConversionError(
        f"ONNX Runtime could not run the model on the calibration samples: {type(exc).__name__}: {first_line(exc, 300)}",
        "check that the calibration samples match the model inputs (names, shapes, dtypes)",
        detail="".join(traceback.format_exception(exc)),
    )
