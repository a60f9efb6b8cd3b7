"""A torchvision-style normalization inside a PyTorch or ONNX model, read from its graph into the contract: the
range the model takes and the mean/std it applies itself, read back from the built artifact."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.contract import stamp
from edgekit.contract.graph_hints import source_hints
from edgekit.errors import ContractError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PIXEL_MEAN, PIXEL_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _torch_net(normalize: bool):
    import torch

    class Normalize(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.norm = Normalize() if normalize else torch.nn.Identity()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, image):
            return self.fc(self.conv(self.norm(image)).mean((2, 3)))

    return Net()


def _onnx_net(path, normalize: bool, scale_op: str = "Div"):
    """NCHW image -> (x - mean) / std (or * 1/std) -> global mean over H, W -> MatMul to 5 values."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 5)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes, first = [], "image"
    if normalize:
        std = np.array(PIXEL_STD, np.float32).reshape(1, 3, 1, 1)
        scale = std if scale_op == "Div" else 1 / std
        inits += [numpy_helper.from_array(np.array(PIXEL_MEAN, np.float32).reshape(1, 3, 1, 1), "mean"),
                  numpy_helper.from_array(scale, "scale")]
        nodes += [helper.make_node("Sub", ["image", "mean"], ["centred"], name="sub_mean"),
                  helper.make_node(scale_op, ["centred", "scale"], ["normed"], name="scale_std")]
        first = "normed"
    nodes += [helper.make_node("ReduceMean", [first, "axes"], ["pooled"], keepdims=0, name="pool"),
              helper.make_node("MatMul", ["pooled", "w"], ["logits"], name="head")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def _loaded(model, example=None):
    from edgekit.sources import load_source

    return load_source(model, example_inputs=example)


@pytest.mark.slow
def test_a_model_without_a_normalization_gives_no_hint(tmp_path):
    import torch

    assert source_hints(_loaded(_torch_net(False), torch.rand(1, 3, 8, 8))) == {}
    assert source_hints(_loaded(str(_onnx_net(tmp_path / "plain.onnx", False)))) == {}


def test_a_mul_by_the_reciprocal_reads_as_the_std(tmp_path):
    hint = source_hints(_loaded(str(_onnx_net(tmp_path / "mul.onnx", True, "Mul"))))["image"]
    assert hint["model_mean"] == PIXEL_MEAN
    assert hint["model_std"] == PIXEL_STD
    assert hint["range"] == (0.0, 255.0)
    assert hint["origin"].startswith("ONNX nodes Sub 'sub_mean', Mul 'scale_std'")


@pytest.mark.slow
def test_a_torch_normalize_block_lands_in_the_artifacts_contract(tmp_path):
    import torch

    import edgekit

    data = np.random.default_rng(1).random((16, 3, 8, 8), dtype=np.float32)
    build = edgekit.convert(_torch_net(True), example_inputs=torch.rand(1, 3, 8, 8), formats=["onnx"],
                            precision=["fp32"], calibration_data=data, output_dir=tmp_path / "build")
    item = stamp.read(build.artifacts[0].path).input("image")
    assert item.model_mean == IMAGENET_MEAN
    assert item.model_std == IMAGENET_STD
    assert (item.range, item.mean, item.std) == ((0.0, 1.0), None, None)  # the app feeds [0, 1]; no second normalize
    assert item.origin["model_mean"].startswith("torch ops aten.sub.Tensor 'sub', aten.div.Tensor 'div'")
    assert item.origin["range"] == item.origin["model_mean"]


@pytest.mark.slow
def test_an_onnx_sub_div_pair_lands_in_the_artifacts_contract(tmp_path):
    import edgekit

    source = _onnx_net(tmp_path / "norm.onnx", True)
    data = np.round(np.random.default_rng(2).random((16, 3, 8, 8), dtype=np.float32) * 255)
    build = edgekit.convert(str(source), formats=["onnx"], precision=["fp32"], calibration_data=data,
                            output_dir=tmp_path / "build")
    item = stamp.read(build.artifacts[0].path).input("image")
    assert (item.model_mean, item.model_std, item.range) == (PIXEL_MEAN, PIXEL_STD, (0.0, 255.0))
    assert item.origin["model_std"] == ("ONNX nodes Sub 'sub_mean', Div 'scale_std': (x - mean) / std in the model, "
                                        "mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375]")


@pytest.mark.slow
def test_a_declared_mean_on_a_self_normalizing_model_is_refused(tmp_path):
    import edgekit

    source = _onnx_net(tmp_path / "norm.onnx", True)
    data = np.full((4, 3, 8, 8), 0.5, np.float32)
    declared = {"inputs": [{"name": "image", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}]}
    with pytest.raises(ContractError) as caught:
        edgekit.convert(str(source), formats=["onnx"], precision=["fp32"], calibration_data=data,
                        output_dir=tmp_path / "build", contract=declared)
    assert ("inputs.image.mean = [0.485, 0.456, 0.406] (std [0.229, 0.224, 0.225]) asks the app to normalize, but the "
            "model normalizes this input itself (ONNX nodes Sub 'sub_mean', Div 'scale_std'") in caught.value.message
    assert "the input would be normalized twice" in caught.value.message
    declared = {"inputs": [{"name": "image", "model_mean": [0.5, 0.5, 0.5], "model_std": list(PIXEL_STD)}]}
    with pytest.raises(ContractError, match=r"inputs\.image\.model_mean = \[0\.5, 0\.5, 0\.5\] but the model's graph "
                                            r"says \[123\.675, 116\.28, 103\.53\]"):
        edgekit.convert(str(source), formats=["onnx"], precision=["fp32"], calibration_data=data * 255,
                        output_dir=tmp_path / "build2", contract=declared)
