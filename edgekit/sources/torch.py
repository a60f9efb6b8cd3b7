"""PyTorch sources: an in-memory ``torch.nn.Module``, a TorchScript archive or a torch.export ``.pt2``.

Safety policy (torch 2.13, read from its source):

- **In-memory modules** are the user's own code already running in this process: accepted as they are.
  edgekit works on a deep copy in ``eval()`` mode and never changes the user's module.
- **TorchScript** (``torch.jit.save`` archives) carries TorchScript code that ``torch.jit.load`` compiles
  and runs, and its ``data.pkl`` is unpickled by the TorchScript unpickler. Refused unless
  ``allow_unsafe=True`` (``--allow-unsafe``).
- **torch.export ``.pt2``** archives are *not* plain JSON + tensors either: ``torch.export.load`` unpickles
  weights and constants saved with ``use_pickle`` through ``torch.load(weights_only=False)``, unpickles
  opaque and script objects with ``pickle.loads`` / the TorchScript unpickler, falls back to
  ``weights_only=False`` when the sample inputs fail the safe unpickler, and parses the symbolic shape
  expressions of the graph JSON with ``sympy.sympify`` (which evaluates Python). So by default edgekit
  reads the archive itself as data (:mod:`edgekit.sources.pt2_safe`) and refuses archives holding more
  than data; ``allow_unsafe=True`` loads them with ``torch.export.load``.
- Either way, before anything is loaded the archive itself is checked: every member name must stay
  inside the archive (no absolute paths, ``..``, backslashes or duplicates), every member's declared
  size must fit in the file, and every member's CRC must match (a truncated or corrupt archive is a
  :class:`ModelFileError`, not a crash deep inside torch).
- Parameters, buffers and constants holding NaN or Inf are a :class:`ModelFileError` naming the tensor.
"""
from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConversionError, DataError, InvalidOptionError, ModelFileError, UnsafeModelError, first_line
from edgekit.sources.archive import check_archive
from edgekit.sources.base import LoadedSource, layout_of, sha256_of
from edgekit.sources.sniff import Sniffed
from edgekit.specs import ModelSource, TensorSpec

_EXAMPLE_HINT = (
    "pass example_inputs= (a tensor, a tuple of tensors, or a dict input name -> tensor) "
    "with the shapes the model takes, batch dimension included"
)


class TorchSource(LoadedSource):
    """A PyTorch model ready to run: ``model`` is the nn.Module (or ScriptModule) that ``predict`` calls.

    ``exported_program`` is the ``torch.export.ExportedProgram`` the ONNX and OpenVINO routes convert;
    it is built on first use from the module and its example inputs.
    """

    def __init__(
        self,
        spec: ModelSource,
        model: Any,
        example_args: tuple[Any, ...],
        exported_program: Any = None,
    ) -> None:
        super().__init__(spec, model)
        self.example_args = example_args
        self._exported_program = exported_program

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.spec.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.spec.outputs]

    @property
    def exported_program(self) -> Any:
        """The model as a ``torch.export.ExportedProgram`` (built lazily, then kept)."""
        if self._exported_program is None:
            self._exported_program = _export(self.model, self.example_args)
        return self._exported_program

    def args_for(self, static_shapes: dict[str, tuple[int, ...]]) -> tuple[Any, ...]:
        """Example arguments, with the inputs named in ``static_shapes`` resized to those shapes."""
        return tuple(
            _example_of_shape(arg, static_shapes[name]) if name in static_shapes else arg
            for name, arg in zip(self.input_names, self.example_args, strict=True)
        )

    def program_for(self, static_shapes: dict[str, tuple[int, ...]]) -> Any:
        """The ExportedProgram, captured again at ``static_shapes`` when they name any input."""
        if not any(name in static_shapes for name in self.input_names):
            return self.exported_program
        return _export(self.exported_program.module(), self.args_for(static_shapes))

    def predict(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        missing = [name for name in self.input_names if name not in feed]
        if missing:
            raise DataError(
                f"the feed has no value for input(s) {', '.join(missing)}",
                f"the model's inputs are: {', '.join(self.input_names)}",
            )
        args = tuple(torch.from_numpy(_as_dtype(feed[spec.name], spec.dtype)) for spec in self.spec.inputs)
        with torch.no_grad():
            outputs = _flatten_outputs(self.model(*args))
        return {name: value.detach().cpu().numpy() for name, value in outputs}


def _as_dtype(value: np.ndarray, dtype: str) -> np.ndarray:
    """``value`` as a contiguous array of the input's dtype (when numpy has that dtype)."""
    try:
        wanted = np.dtype(dtype)
    except TypeError:  # bfloat16 and other torch-only dtypes
        return np.ascontiguousarray(value)
    return np.ascontiguousarray(value, dtype=wanted)


# ---------------------------------------------------------------------------------------------- loaders


def from_object(
    module: Any, framework: str, *, example_inputs: Any = None, allow_unsafe: bool = False
) -> TorchSource:
    """Load an in-memory ``torch.nn.Module``; ``example_inputs`` is required (it fixes the input shapes)."""
    del framework, allow_unsafe  # always "torch"; an in-memory module is already trusted code
    if example_inputs is None:
        raise InvalidOptionError("a torch.nn.Module needs example_inputs to be converted", _EXAMPLE_HINT)
    try:
        model = copy.deepcopy(module).eval()
    except Exception as exc:  # a module holding an uncopyable attribute (a lock, an open file, ...)
        raise InvalidOptionError(
            f"edgekit cannot copy the module to work on it: {type(exc).__name__}: {first_line(exc)}",
            "edgekit never changes your module, so it converts a deep copy; make the module deep-copyable",
        ) from exc
    _check_finite(_named_tensors(model))
    names, args = _normalise_examples(example_inputs, _forward_parameter_names(model.forward))
    return _build(model, names, args, kind="in-memory", path=None)


def load_file(sniffed: Sniffed, *, example_inputs: Any = None, allow_unsafe: bool = False) -> TorchSource:
    """Load a TorchScript (``torch.jit.save``) or torch.export (``.pt2``) archive, if ``allow_unsafe``."""
    path = Path(sniffed.path)
    check_archive(path)
    if sniffed.kind not in ("torchscript", "pt2"):
        raise ModelFileError(f"{path} is not a TorchScript or torch.export archive", "export the model again")
    if sniffed.kind == "pt2":
        return _load_pt2(path, example_inputs, allow_unsafe)
    if not allow_unsafe:
        raise UnsafeModelError(_UNSAFE_MESSAGE.format(path=path), _UNSAFE_HINT)
    return _load_torchscript(path, example_inputs)


_UNSAFE_MESSAGE = (
    "{path} is a TorchScript archive: loading it compiles and runs the TorchScript code it carries, "
    "so edgekit does not load it by default"
)
_UNSAFE_HINT = (
    "if you trust where the file comes from, pass allow_unsafe=True (CLI: --allow-unsafe); otherwise load "
    "the model in Python from source code you trust and pass the nn.Module with example_inputs="
)


def _load_torchscript(path: Path, example_inputs: Any) -> TorchSource:
    import torch

    if example_inputs is None:
        raise InvalidOptionError(
            f"a TorchScript model ({path.name}) does not record its input shapes: example_inputs is required",
            _EXAMPLE_HINT,
        )
    try:
        model = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # torch raises RuntimeError / ValueError with long C++ traces
        raise ModelFileError(f"cannot load TorchScript {path.name}: {first_line(exc)}", "export it again") from exc
    _check_finite(_named_tensors(model))
    arguments = [arg.name for arg in model.forward.schema.arguments[1:]]  # [0] is self
    names, args = _normalise_examples(example_inputs, arguments)
    return _build(model, names, args, kind="torchscript", path=path)


def _load_pt2(path: Path, example_inputs: Any, allow_unsafe: bool) -> TorchSource:
    import torch

    from edgekit.sources.pt2_safe import load_pt2

    try:
        program = torch.export.load(str(path)) if allow_unsafe else load_pt2(path)
    except (ModelFileError, UnsafeModelError):
        raise
    except Exception as exc:
        raise ModelFileError(
            f"cannot load torch.export archive {path.name}: {first_line(exc)}", "export it again"
        ) from exc
    _check_finite([*program.state_dict.items(), *program.constants.items()])
    placeholders = _user_input_values(program)
    names = list(placeholders)
    if example_inputs is not None:
        names, args = _normalise_examples(example_inputs, names)
    else:
        args = tuple(_tensor_like(value) for value in placeholders.values())
    dynamic = {name: _dynamic_dims(value) for name, value in placeholders.items()}
    return _build(program.module(), names, args, kind="pt2", path=path, dynamic=dynamic, program=program)


# ---------------------------------------------------------------------------------------------- building


def _build(
    model: Any,
    names: list[str],
    args: tuple[Any, ...],
    *,
    kind: str,
    path: Path | None,
    dynamic: dict[str, set[int]] | None = None,
    program: Any = None,
) -> TorchSource:
    import torch

    try:
        with torch.no_grad():
            outputs = _flatten_outputs(model(*args))
    except (InvalidOptionError, ModelFileError):
        raise
    except Exception as exc:
        raise InvalidOptionError(
            f"the model fails on its example inputs: {type(exc).__name__}: {first_line(exc)}",
            "check that example_inputs have the shapes and dtypes the model's forward() expects",
        ) from exc
    dynamic = dynamic or {}
    inputs = tuple(_spec(name, tensor, dynamic.get(name, set())) for name, tensor in zip(names, args, strict=True))
    output_dynamic = _output_dynamic_dims(program, len(outputs)) if program is not None else {}
    specs_out = tuple(_spec(name, tensor, output_dynamic.get(i, set())) for i, (name, tensor) in enumerate(outputs))
    spec = ModelSource(
        framework="torch",
        kind=kind,
        path=str(path) if path else None,
        sha256=sha256_of(path) if path else None,
        size_bytes=path.stat().st_size if path else None,
        inputs=inputs,
        outputs=specs_out,
        task=_task(specs_out),
    )
    return TorchSource(spec, model, args, exported_program=program)


def _spec(name: str, tensor: Any, dynamic_dims: set[int]) -> TensorSpec:
    shape = tuple(None if i in dynamic_dims else int(d) for i, d in enumerate(tensor.shape))
    return TensorSpec(name=name, shape=shape, dtype=_dtype_name(tensor.dtype), layout=layout_of(shape, "torch"))


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _task(outputs: tuple[TensorSpec, ...]) -> str:
    if len(outputs) == 1 and len(outputs[0].shape) == 2 and (outputs[0].shape[1] or 0) >= 2:
        return "classifier"
    return "other"


def _export(model: Any, args: tuple[Any, ...]) -> Any:
    """``torch.export.export`` of a module (or TorchScript module) on its example arguments."""
    import torch

    try:
        if isinstance(model, torch.jit.ScriptModule):
            from torch._export.converter import TS2EPConverter

            # The converter marks every dimension dynamic; capture its module again at the example shapes.
            return torch.export.export(TS2EPConverter(model, args).convert().module(), args)
        return torch.export.export(model, args)
    except Exception as exc:
        raise ConversionError(
            f"torch.export cannot capture the model: {type(exc).__name__}: {first_line(exc)}",
            "the ONNX and OpenVINO routes need a torch.export-able forward(); avoid data-dependent Python "
            "control flow or rewrite it with torch.cond",
        ) from exc


# ---------------------------------------------------------------------------------------------- inputs/outputs


def _forward_parameter_names(forward: Any) -> list[str]:
    """Names of the positional parameters of ``forward`` (``self`` excluded)."""
    try:
        parameters = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds]


def _normalise_examples(example_inputs: Any, parameter_names: list[str]) -> tuple[list[str], tuple[Any, ...]]:
    """(input names, positional tensors) from a tensor, a tuple/list of tensors or a dict name -> tensor."""
    if isinstance(example_inputs, dict):
        unknown = [k for k in example_inputs if k not in parameter_names]
        if parameter_names and unknown:
            raise InvalidOptionError(
                f"example_inputs has key(s) {', '.join(map(str, unknown))} that forward() does not take",
                f"forward() takes: {', '.join(parameter_names)}",
            )
        order = [n for n in parameter_names if n in example_inputs] or list(example_inputs)
        return order, tuple(_as_tensor(example_inputs[n], n) for n in order)
    items = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    if not items:
        raise InvalidOptionError("example_inputs is empty", _EXAMPLE_HINT)
    names = [
        parameter_names[i] if i < len(parameter_names) else f"input_{i}" for i in range(len(items))
    ]
    return names, tuple(_as_tensor(item, name) for item, name in zip(items, names, strict=True))


def _as_tensor(value: Any, name: str) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise InvalidOptionError(
        f"example input '{name}' is a {type(value).__name__}, not a tensor or numpy array", _EXAMPLE_HINT
    )


def _flatten_outputs(outputs: Any) -> list[tuple[str, Any]]:
    """(name, tensor) pairs: ``output`` for one tensor, ``output_i`` for a tuple/list, keys for a dict."""
    import torch

    if isinstance(outputs, torch.Tensor):
        return [("output", outputs)]
    if isinstance(outputs, dict):
        pairs = [(str(k), v) for k, v in outputs.items()]
    elif isinstance(outputs, (tuple, list)):
        pairs = [(f"output_{i}", v) for i, v in enumerate(outputs)]
    else:
        pairs = [("output", outputs)]
    bad = [name for name, value in pairs if not isinstance(value, torch.Tensor)]
    if bad:
        raise InvalidOptionError(
            f"the model returns non-tensor output(s) {', '.join(bad)}",
            "edgekit converts models whose forward() returns a tensor, a tuple of tensors or a dict of tensors",
        )
    return pairs


def _user_input_values(program: Any) -> dict[str, Any]:
    """User input name -> fake tensor of an ExportedProgram's graph."""
    user_inputs = set(program.graph_signature.user_inputs)
    return {
        node.name: node.meta["val"]
        for node in program.graph.nodes
        if node.op == "placeholder" and node.name in user_inputs
    }


def _dynamic_dims(fake: Any) -> set[int]:
    import torch

    return {i for i, d in enumerate(fake.shape) if isinstance(d, torch.SymInt)}


def _tensor_like(fake: Any) -> Any:
    """A real tensor with the fake tensor's dtype and its dims' example (hint) values."""
    return _example_of_shape(fake, tuple(_size_hint(d) for d in fake.shape))


def _example_of_shape(like: Any, shape: tuple[int, ...]) -> Any:
    """A tensor of ``like``'s dtype and ``shape``: normal values for floats, zeros otherwise."""
    import torch

    if like.dtype.is_floating_point:
        return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(0)).to(like.dtype)
    return torch.zeros(tuple(shape), dtype=like.dtype)


def _size_hint(dim: Any) -> int:
    import torch

    if isinstance(dim, torch.SymInt):
        return int(dim.node.hint) if dim.node.has_hint() else 2
    return int(dim)


def _output_dynamic_dims(program: Any, count: int) -> dict[int, set[int]]:
    output_node = next(node for node in program.graph.nodes if node.op == "output")
    values = [arg.meta.get("val") if hasattr(arg, "meta") else None for arg in output_node.args[0]]
    user = values[-count:] if count else []
    return {i: _dynamic_dims(v) for i, v in enumerate(user) if v is not None and hasattr(v, "shape")}


# ---------------------------------------------------------------------------------------------- checks


def _named_tensors(model: Any) -> list[tuple[str, Any]]:
    return [*model.named_parameters(), *model.named_buffers()]


def _check_finite(named: list[tuple[str, Any]]) -> None:
    """ModelFileError naming the first floating tensor holding NaN or Inf."""
    import torch

    for name, tensor in named:
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(
                f"parameter '{name}' holds NaN or Inf values",
                "the model's weights are broken (a diverged training run?); fix or retrain before converting",
            )

