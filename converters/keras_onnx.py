"""Keras 2 / Keras 3 -> ONNX: tf2onnx on the serving function (named inputs and outputs), then ``finish_onnx``."""
from __future__ import annotations

import re
from pathlib import Path

from edgekit.converters._keras_common import conversion_step, input_signature, tf_function, warm_up
from edgekit.converters._onnx_post import finish_onnx

from edgekit.routes import RouteOutput, RouteRequest

OPSET = 17


def convert(request: RouteRequest) -> RouteOutput:
    """Write ``<stem>.onnx`` at ``request.precision``; input and output names are the source's."""
    import tf2onnx

    request.progress(0.05, "running the model once")
    warm_up(request)
    fp32 = request.out_dir / f"{request.stem}.fp32-intermediate.onnx"
    request.progress(0.15, f"converting with tf2onnx (opset {OPSET})")
    with conversion_step(
        "tf2onnx",
        "the message names the TensorFlow op tf2onnx could not convert; replace that layer or try the tflite route",
    ):
        tf2onnx.convert.from_function(
            tf_function(request), input_signature=input_signature(request), opset=OPSET, output_path=str(fp32)
        )
    _stabilize_names(fp32)
    request.progress(0.6, f"saving ONNX at {request.precision}")
    output = finish_onnx(fp32, request)
    output.notes.insert(0, f"tf2onnx {tf2onnx.__version__}, opset {OPSET}, NHWC layout kept")
    return output


_GENERATED = re.compile(r"^(.*?)__\d+(:\d+)?$")  # "const_fold_opt__63", "Conv__37:0", "unk__128"


def _stabilize_names(path: Path) -> None:
    """Rename what tf2onnx numbers from process-wide counters (constants, node outputs, node names,
    dynamic dimensions) by its place in the graph, order initializers by first use and drop the traced
    function's numbered name, so that rebuilds are byte-identical."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    first_use: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for position, name in enumerate(node.input):
            first_use.setdefault(name, index * 64 + position)
    initializers = sorted(graph.initializer, key=lambda t: (first_use.get(t.name, 1 << 62), t.name))
    renames: dict[str, str] = {}
    for index, tensor in enumerate(initializers):
        if _GENERATED.match(tensor.name):  # the stem too can vary: deduplicated constants keep any one name
            renames[tensor.name] = f"const__c{index}"
    for index, node in enumerate(graph.node):
        for output in node.output:
            match = _GENERATED.match(output)
            if match:
                renames[output] = f"{match.group(1)}__t{len(renames)}{match.group(2) or ''}"
    for index, node in enumerate(graph.node):
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
        match = _GENERATED.match(node.name)
        if match:
            node.name = f"{match.group(1)}__n{index}"
    for tensor in (*initializers, *graph.value_info, *graph.output):
        tensor.name = renames.get(tensor.name, tensor.name)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    graph.doc_string = "converted by tf2onnx"  # it named the traced function, numbered per process
    dim_names: dict[str, str] = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and _GENERATED.match(dim.dim_param):
                dim.dim_param = dim_names.setdefault(dim.dim_param, f"dim__{len(dim_names)}")
    onnx.save(model, str(path))
