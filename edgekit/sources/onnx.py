"""ONNX sources: an ``.onnx`` file (with or without external data) or an in-memory ``onnx.ModelProto``.

Safety policy: ONNX Runtime and OpenVINO open external-data files themselves, so every external
location is checked before anything reads it. The graph is parsed with
``onnx.load(path, load_external_data=False)``, then every tensor stored externally (initializers,
sparse initializers and tensor attributes, in subgraphs and functions too) must name a relative
location without ``..``, which resolves (symlinks followed) inside the model's folder to a regular
file that is not a hard link, and whose declared ``offset`` + ``length`` fit in that file and match
the tensor's shape. Only then is the data read. ``allow_unsafe`` does not waive these rules: a model
never needs data outside its folder (move the files instead), and ONNX itself refuses most such paths.

``predict`` runs the fp32 source in ONNX Runtime on the CPU with only the basic graph optimizations,
which do not change fp32 numerics.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from edgekit.errors import DataError, ModelFileError, UnsafeModelError, first_line
from edgekit.limits_onnx import check_sparse_data
from edgekit.sources.base import LoadedSource, layout_of
from edgekit.sources.finite import check_finite_weights
from edgekit.sources.sniff import Sniffed
from edgekit.specs import ModelSource, TensorSpec

# A ModelProto cannot be serialized (nor checked in memory) above 2 GiB.
_PROTOBUF_LIMIT = 2 << 30
# Ops whose output, as the only rank-2 output, marks a classifier head (see ``_task_of``).
_CLASSIFIER_HEADS = {"Softmax", "LogSoftmax", "Gemm", "MatMul", "Add", "Sigmoid"}
_PASS_THROUGH = {"Identity", "Flatten", "Reshape", "Squeeze"}


class OnnxSource(LoadedSource):
    """An ONNX model: ``model`` is the ``onnx.ModelProto`` with its weights in memory."""

    def __init__(self, spec: ModelSource, model: Any, session: Any) -> None:
        super().__init__(spec, model)
        self.session = session

    def predict(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = {}
        for spec in self.spec.inputs:
            if spec.name not in feed:
                raise DataError(
                    f"no array for ONNX input '{spec.name}' (got {sorted(feed)})",
                    f"give one array per input: {', '.join(s.name for s in self.spec.inputs)}",
                )
            value = np.asarray(feed[spec.name])
            arrays[spec.name] = value.astype(spec.dtype, copy=False) if spec.dtype != "object" else value
        names = [spec.name for spec in self.spec.outputs]
        return dict(zip(names, self.session.run(names, arrays), strict=True))


def load_file(sniffed: Sniffed, *, example_inputs: Any = None, allow_unsafe: bool = False) -> OnnxSource:
    """Load an ``.onnx`` file after checking its external data; ``example_inputs`` is not needed."""
    import onnx

    path = Path(sniffed.path)
    model = _parse(path)
    files = sorted(set(_checked_external_data(model, path).values()))
    if files:
        check_sparse_data(model, path)
        try:
            onnx.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:  # onnx raises ValueError/OSError on data it cannot read
            raise ModelFileError(
                f"{path} is not a valid ONNX model: its external data cannot be read: {first_line(exc, 300)}",
                "copy the model together with its .data file(s) into one folder",
            ) from exc
    all_files = [path, *files]
    size = sum(f.stat().st_size for f in all_files)
    _check(model, path, big=size > _PROTOBUF_LIMIT)
    check_finite_weights(_float_initializers(model), str(path))
    spec = _spec_of(model, kind="onnx", path=str(path), sha256=_sha256_of_files(all_files), size=size)
    return OnnxSource(spec, model, _session(model, path, big=size > _PROTOBUF_LIMIT))


def from_object(model: Any, framework: str, *, example_inputs: Any = None, allow_unsafe: bool = False) -> OnnxSource:
    """Wrap an in-memory ``onnx.ModelProto`` whose weights are all in memory."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise ModelFileError(f"expected an onnx.ModelProto, got {type(model).__qualname__}", "pass onnx.load(path)")
    external = [tensor.name for tensor in _all_tensors(model) if _is_external(tensor)]
    if external:
        raise ModelFileError(
            f"the in-memory ONNX model still refers to external data (tensor '{external[0]}')",
            "load it with onnx.load(path) (which reads the data) or pass the .onnx path instead",
        )
    model = _copy(model)
    size = model.ByteSize()
    big = size > _PROTOBUF_LIMIT
    _check(model, None, big=big)
    check_finite_weights(_float_initializers(model), "the in-memory ONNX model")
    digest = None if big else hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
    spec = _spec_of(model, kind="in-memory", path=None, sha256=digest, size=size)
    return OnnxSource(spec, model, _session(model, None, big=big))


def external_data_files(model_path: Path) -> list[Path]:
    """The external data files ``model_path`` uses, checked to be inside its folder, in sorted order."""
    model_path = Path(model_path)
    return sorted(set(_checked_external_data(_parse(model_path), model_path).values()))


def save_copy(source: OnnxSource, folder: Path, static_shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
    """Write the source model (and its external data, under the same names) into ``folder`` as model.onnx.

    A source file is copied as it is, its data files beside it; an in-memory model, or one whose dynamic
    input dimensions ``static_shapes`` fixes, is saved from memory. The user's files are never modified.
    """
    import onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.onnx"
    fixes = {name: shape for name, shape in (static_shapes or {}).items() if name in {s.name for s in source.spec.inputs}}
    if source.spec.path and not fixes:
        original = Path(source.spec.path)
        shutil.copyfile(original, target)
        for location, file in _checked_external_data(_parse(original), original).items():
            copy = folder / location
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, copy)
        return target
    model = _copy(source.model)
    for value in model.graph.input:
        for dim, size in zip(value.type.tensor_type.shape.dim, fixes.get(value.name, ())):
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                dim.dim_value = int(size)
    big = model.ByteSize() > _PROTOBUF_LIMIT
    if fixes and not big:
        model = _reinferred_outputs(model)
    onnx.save_model(model, str(target), save_as_external_data=big, all_tensors_to_one_file=True, location="model.onnx.data")
    return target


def _reinferred_outputs(model: Any) -> Any:
    """``model`` with its output (and intermediate) shapes inferred again from its inputs' fixed shapes.

    The declared output shapes of a model whose input shapes were changed are stale: ONNX Runtime warns on
    every run when a declared dimension disagrees with the computed one. Where inference fails the old
    declarations are kept.
    """
    import onnx

    cleared = _copy(model)
    del cleared.graph.value_info[:]
    for output in cleared.graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(cleared, strict_mode=True, data_prop=True)
    except Exception:  # an op ONNX cannot infer: keep the model as it was
        return model
    declared = {output.name: output for output in model.graph.output}
    for output in inferred.graph.output:
        if not output.type.tensor_type.HasField("shape"):
            output.type.tensor_type.shape.CopyFrom(declared[output.name].type.tensor_type.shape)
    return inferred


# ---------------------------------------------------------------- parsing and checking


def _parse(path: Path) -> Any:
    """The ModelProto of ``path`` without its external data, or ModelFileError."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelFileError(
            f"{path} is not a valid ONNX model (it cannot be parsed): {first_line(exc, 300)}",
            "the file is truncated or corrupt; export or copy the model again",
        ) from exc


def _check(model: Any, path: Path | None, *, big: bool) -> None:
    """``onnx.checker`` on the model (full check with shape inference unless it is over 2 GiB)."""
    import onnx

    try:
        if big:
            if path is None:
                onnx.checker.check_model(model)
            else:
                onnx.checker.check_model(str(path))
        else:
            onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError
        where = path if path is not None else "the in-memory model"
        raise ModelFileError(
            f"{where} is not a valid ONNX model (onnx.checker): {first_line(exc, 300)}",
            "the file is truncated or corrupt, or the exporter wrote an invalid graph; export it again",
        ) from exc


def _checked_external_data(model: Any, model_path: Path) -> dict[str, Path]:
    """Check every externally stored tensor of ``model``; map each location it names to the real file."""
    folder = Path(os.path.realpath(model_path.parent))
    files: dict[str, Path] = {}
    for tensor in _all_tensors(model):
        if _is_external(tensor):
            real = _check_tensor_location(tensor, model_path, folder)
            files[_location(tensor)] = real
    return files


def _location(tensor: Any) -> str:
    return next((entry.value for entry in tensor.external_data if entry.key == "location"), "")


def _check_tensor_location(tensor: Any, model_path: Path, folder: Path) -> Path:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    name = tensor.name or "<unnamed>"

    def refuse(reason: str) -> UnsafeModelError:
        return UnsafeModelError(
            f"{model_path} is unsafe: tensor '{name}' reads external data from '{location}', {reason}",
            "keep the model's external data files in the model's own folder, named by plain relative paths "
            "(onnx.save_model(..., save_as_external_data=True) does this)",
        )

    if not location or "\x00" in location:
        raise refuse("which is not a file name")
    parts = PurePosixPath(location.replace("\\", "/")).parts
    if PurePosixPath(location).is_absolute() or PureWindowsPath(location).is_absolute() or PureWindowsPath(location).drive:
        raise refuse("an absolute path")
    if ".." in parts:
        raise refuse("a path that leaves the model's folder ('..')")
    real = Path(os.path.realpath(model_path.parent / location))
    if not real.is_relative_to(folder):
        raise refuse(f"which resolves to {real}, outside the model's folder {folder} (a symlink?)")
    try:
        status = os.stat(real)
    except OSError:
        raise ModelFileError(
            f"{model_path} needs the external data file '{location}' (tensor '{name}'), which is missing",
            "copy the model together with its .data file(s) into one folder",
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise refuse("which is not a regular file")
    if status.st_nlink > 1:
        raise refuse("which is a hard link (it may point at a file outside the model's folder)")
    _check_extent(tensor, info, status.st_size, model_path, location, name)
    return real


def _check_extent(tensor: Any, info: dict[str, str], file_size: int, model_path: Path, location: str, name: str) -> None:
    """The declared offset/length must lie inside the file and match the tensor's shape."""
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else file_size - offset
    except ValueError:
        raise ModelFileError(
            f"{model_path} is not a valid ONNX model: tensor '{name}' has a non-numeric external data offset/length",
            "export the model again",
        ) from None
    if offset < 0 or length < 0 or offset + length > file_size:
        raise UnsafeModelError(
            f"{model_path} is unsafe: tensor '{name}' declares {length} bytes at offset {offset} of '{location}', "
            f"beyond the end of that file ({file_size} bytes)",
            "the .data file is truncated or does not belong to this model; copy both files again",
        )
    expected = _byte_size(tensor)
    if expected is not None and expected != length:
        raise ModelFileError(
            f"{model_path} is not a valid ONNX model: tensor '{name}' has shape {list(tensor.dims)} "
            f"({expected} bytes) but its external data holds {length} bytes",
            "the .data file does not belong to this model; export it again",
        )


def _byte_size(tensor: Any) -> int | None:
    """Bytes a fixed-width tensor needs, or None for strings and sub-byte or exotic types."""
    from onnx import TensorProto
    from onnx.helper import tensor_dtype_to_np_dtype

    variable = {TensorProto.STRING, TensorProto.UNDEFINED}
    variable |= {getattr(TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2") if hasattr(TensorProto, n)}
    if tensor.data_type in variable:
        return None
    try:
        itemsize = np.dtype(tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except KeyError:  # a type numpy has no dtype for
        return None
    return int(np.prod(tensor.dims, dtype=np.int64)) * itemsize


def _float_initializers(model: Any) -> Iterator[tuple[str, str, np.ndarray]]:
    """(name, "initializer", array) of every floating-point initializer, for the NaN/Inf check."""
    from onnx import TensorProto, numpy_helper

    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
    for init in model.graph.initializer:
        if init.data_type in floats:
            yield init.name, "initializer", numpy_helper.to_array(init)


def _is_external(tensor: Any) -> bool:
    from onnx import TensorProto

    return tensor.HasField("data_location") and tensor.data_location == TensorProto.EXTERNAL


def _all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of the model: initializers and tensor attributes, subgraphs and functions included."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("sparse_tensor"):
            yield attribute.sparse_tensor.values
            yield attribute.sparse_tensor.indices
        for sparse in attribute.sparse_tensors:
            yield sparse.values
            yield sparse.indices
        if attribute.HasField("g"):
            yield from _graph_tensors(attribute.g)
        for graph in attribute.graphs:
            yield from _graph_tensors(graph)


# ---------------------------------------------------------------- spec, session, hash


def _spec_of(model: Any, *, kind: str, path: str | None, sha256: str | None, size: int) -> ModelSource:
    initializers = {init.name for init in model.graph.initializer}
    inputs = tuple(_tensor_spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_tensor_spec(v) for v in model.graph.output)
    return ModelSource(
        framework="onnx",
        kind=kind,
        path=path,
        sha256=sha256,
        size_bytes=size,
        inputs=inputs,
        outputs=outputs,
        task=_task_of(model, outputs),
    )


def _tensor_spec(value: Any) -> TensorSpec:
    from onnx.helper import tensor_dtype_to_np_dtype

    if not value.type.HasField("tensor_type"):
        return TensorSpec(name=value.name, shape=(), dtype="object")
    tensor_type = value.type.tensor_type
    shape = tuple(
        dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None for dim in tensor_type.shape.dim
    )
    try:
        dtype = np.dtype(tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
    except KeyError:  # an element type numpy has no dtype for
        dtype = "other"
    return TensorSpec(name=value.name, shape=shape, dtype=dtype, layout=layout_of(shape, "onnx"))


def _task_of(model: Any, outputs: tuple[TensorSpec, ...]) -> str:
    """'classifier' when the model has one rank-2 float output of >= 2 classes made by a dense/softmax op.

    The producing op is found by walking back through Identity/Flatten/Reshape/Squeeze nodes; it must be
    Softmax, LogSoftmax, Sigmoid, Gemm, MatMul or Add (a MatMul's bias). A heuristic: it only decides
    whether top-1 agreement is reported.
    """
    if len(outputs) != 1:
        return "other"
    out = outputs[0]
    if len(out.shape) != 2 or out.shape[1] is None or out.shape[1] < 2 or not out.dtype.startswith("float"):
        return "other"
    producers = {name: node for node in model.graph.node for name in node.output}
    node = producers.get(out.name)
    while node is not None and node.op_type in _PASS_THROUGH and node.input:
        node = producers.get(node.input[0])
    return "classifier" if node is not None and node.op_type in _CLASSIFIER_HEADS else "other"


def _session(model: Any, path: Path | None, *, big: bool) -> Any:
    """An ONNX Runtime CPU session on the fp32 model, with numerics-preserving optimizations only."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    try:
        if big and path is not None:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        where = path if path is not None else "the in-memory ONNX model"
        raise ModelFileError(
            f"ONNX Runtime cannot load {where}: {first_line(exc, 300)}",
            "the model uses an operator or opset ONNX Runtime does not support; export it with a standard opset",
        ) from exc


def _copy(model: Any) -> Any:
    import onnx

    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


def _sha256_of_files(files: list[Path]) -> str:
    """sha256 over the main file then each external data file in sorted order."""
    digest = hashlib.sha256()
    for file in [files[0], *sorted(files[1:])]:
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()

