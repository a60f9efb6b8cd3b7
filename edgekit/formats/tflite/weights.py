"""Weight parameters of a .tflite per stored dtype: constant tensors that ops consume."""
from __future__ import annotations

from collections import Counter
from math import prod
from pathlib import Path


def weight_counts(path: Path) -> Counter:
    """Tensors consumed by ops that no op produces and that are not graph inputs, with more than one element."""
    from edgekit.formats.tflite.litert import interpreter_class

    interpreter = interpreter_class()(model_path=str(path))
    produced: set[int] = set()
    consumed: set[int] = set()
    for op in interpreter._get_ops_details():  # the public API has no op list; this one is stable since TF 2.5
        produced.update(int(i) for i in op["outputs"])
        consumed.update(int(i) for i in op["inputs"] if i >= 0)
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    counts: Counter = Counter()
    for detail in interpreter.get_tensor_details():
        index = detail["index"]
        if index in produced or index in graph_inputs or index not in consumed:
            continue
        size = int(prod(detail["shape"])) if len(detail["shape"]) else 1
        if size > 1:
            counts[detail["dtype"].__name__] += size
    return counts


def float_weights(path: Path) -> Counter:
    """Float weight parameters per op type (``UNIDIRECTIONAL_SEQUENCE_LSTM``: 98304, ...): the ops int8 did not reach."""
    from edgekit.formats.tflite.litert import interpreter_class

    interpreter = interpreter_class()(model_path=str(path))
    ops = interpreter._get_ops_details()
    produced = {int(i) for op in ops for i in op["outputs"]}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    counts: Counter = Counter()
    for op in ops:
        for index in (int(i) for i in op["inputs"] if i >= 0):
            detail = tensors.get(index)
            if detail is None or index in produced or index in graph_inputs or detail["dtype"].__name__ not in _FLOATS:
                continue
            size = int(prod(detail["shape"])) if len(detail["shape"]) else 1
            if size > 1:
                counts[op["op_name"]] += size
    return counts


_FLOATS = {"float32", "float16", "bfloat16", "float64"}
