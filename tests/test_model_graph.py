"""edgekit.model_graph: the nodes and edges of real files, placed on real profiles by edgekit.check."""
from __future__ import annotations

import numpy as np
import pytest
from graph_models import div_chain, strict_profile

import edgekit


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return div_chain(tmp_path_factory.mktemp("graph") / "chain.onnx")


def _placements(graph) -> dict[str, str]:
    return {n.name: n.placement for n in graph.ops()}


def test_the_graph_has_every_op_and_the_tensors_between_them(chain):
    graph = edgekit.model_graph(chain)
    assert [n.name for n in graph.ops()] == ["conv0", "relu0", "div0", "conv1", "add0"]
    assert [(n.kind, n.name) for n in graph.nodes if n.kind != "op"] == [("input", "x"), ("output", "y")]
    ids = {n.id: n.name for n in graph.nodes}
    edges = sorted((ids[e.source], ids[e.target]) for e in graph.edges)
    assert edges == [("add0", "y"), ("conv0", "relu0"), ("conv1", "add0"), ("div0", "conv1"), ("relu0", "add0"),
                     ("relu0", "div0"), ("x", "conv0")]
    assert graph.placement_counts() == {"not_checked": 5}  # no target: nothing is placed


def test_the_edge_tpu_maps_only_the_ops_before_div(chain):
    graph = edgekit.model_graph(chain, target="coral-edgetpu", isolate=False)
    assert graph.placement_format == "tflite"  # the target builds TFLite: the source is placed as it will be there
    assert _placements(graph) == {"conv0": "accelerator", "relu0": "accelerator", "div0": "fallback",
                                  "conv1": "fallback", "add0": "fallback"}
    assert "DIV" in next(n for n in graph.ops() if n.name == "div0").placement_reason


def test_an_op_outside_the_op_set_without_cpu_fallback_is_unsupported(chain, tmp_path):
    graph = edgekit.model_graph(chain, target=strict_profile(tmp_path / "strict.yaml"), isolate=False)
    assert _placements(graph) == {"conv0": "accelerator", "relu0": "accelerator", "div0": "unsupported",
                                  "conv1": "accelerator", "add0": "accelerator"}


def test_a_target_without_an_op_set_is_not_checked_and_says_so(chain):
    graph = edgekit.model_graph(chain, target="intel-npu", isolate=False)
    assert graph.placement_counts() == {"not_checked": 5}
    assert graph.opset_known is False
    assert graph.notes == ["intel-npu states no op set: placement is not checked (not the same as clean)"]


def test_on_a_cpu_target_every_op_runs_on_the_target(chain):
    graph = edgekit.model_graph(chain, target="cpu-x86", isolate=False)
    assert graph.placement_counts() == {"accelerator": 5}
    assert {n.placement for n in graph.nodes if n.kind != "op"} == {"io"}


def test_a_file_that_is_no_model_is_refused(tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model at all")
    with pytest.raises(edgekit.EdgekitError):
        edgekit.model_graph(bogus)


def test_on_the_edge_tpu_an_op_folded_after_the_cut_falls_back_too(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.full((2, 2, 1, 1), 0.5, np.float32), "w"),
               numpy_helper.from_array(np.array(2.0, np.float32), "two"),
               *(numpy_helper.from_array(np.ones(2, np.float32), n) for n in ("scale", "bias", "mean", "var"))]
    nodes = [helper.make_node("Div", ["x", "two"], ["d"], name="div0"),
             helper.make_node("Conv", ["d", "w"], ["c"], name="conv0"),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"], name="bn0")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], weights)
    path = tmp_path / "bn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    placed = edgekit.model_graph(path, target="coral-edgetpu", isolate=False)
    assert _placements(placed) == {"div0": "fallback", "conv0": "fallback", "bn0": "fallback"}
