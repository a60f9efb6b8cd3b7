"""The contract of a build: what the user declared, completed from what the source and its data say, and held
against the calibration data (a declared range the data contradict is an error at build time).

Inferred, each with its ``origin``: kind, layout, shape, dtype from the source's specs (an image is a rank-4
input with 1 or 3 channels; grayscale for 1 channel, RGB assumed for 3); the value range of an image input
from the calibration data, snapped to [0, 1], [-1, 1] or [0, 255]; the kind of a classifier output from its
name and the source's task; from the model's own first ops (``hints``: Keras preprocessing layers, a
torchvision-style normalization in a PyTorch or ONNX graph) the range it takes and the mean/std it applies
itself (``model_mean``/``model_std``). Declared fields always win and are marked ``declared``; a declared
mean/std on an input the model normalizes itself (the app would normalize twice) is a contradiction.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.contract.schema import Contract, InputContract, OutputContract
from edgekit.errors import ContractError
from edgekit.specs import ModelSource, TensorSpec

CANONICAL_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
SLACK = 0.01  # data may exceed a declared range by this share of its span (rounding, resampling)


def measured_ranges(feeds: list[dict[str, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """Per input, the smallest and largest value of the float data in ``feeds``."""
    ranges: dict[str, tuple[float, float]] = {}
    for feed in feeds:
        for name, value in feed.items():
            array = np.asarray(value)
            if array.size == 0 or not np.issubdtype(array.dtype, np.number):
                continue
            low, high = float(array.min()), float(array.max())
            old = ranges.get(name)
            ranges[name] = (low, high) if old is None else (min(old[0], low), max(old[1], high))
    return ranges


def channels_of(spec: TensorSpec) -> int | None:
    """The channel count of a rank-4 image input, by its layout."""
    if len(spec.shape) != 4:
        return None
    return spec.shape[1] if spec.layout == "NCHW" else spec.shape[3] if spec.layout == "NHWC" else None


def _infer_input(spec: TensorSpec, measured: tuple[float, float] | None, samples: int,
                 hint: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": "tensor", "shape": tuple(spec.shape), "dtype": spec.dtype}
    origin = {"kind": "source spec", "shape": "source spec", "dtype": "source spec"}
    if spec.layout not in ("other", "scalar"):
        found["layout"], origin["layout"] = spec.layout, "source spec"
    channels = channels_of(spec)
    if channels in (1, 3) and np.issubdtype(np.dtype(spec.dtype), np.floating):
        found.update(kind="image", color="GRAY" if channels == 1 else "RGB", resize="stretch")
        origin.update(kind=f"source spec: rank 4 with {channels} channel(s)", resize="edgekit's default",
                      color="source spec: 1 channel" if channels == 1 else "assumed: RGB, the usual training order")
        snapped = _snap(measured)
        if hint is not None:  # the model's own preprocessing layer says it
            found["range"], origin["range"] = hint["range"], hint["origin"]
            if "model_mean" in hint:
                found.update(model_mean=hint["model_mean"], model_std=hint["model_std"])
                origin.update(model_mean=hint["origin"], model_std=hint["origin"])
        elif snapped is not None:
            found["range"] = snapped
            origin["range"] = f"the build's data: {samples} samples, values {measured[0]:.4g} .. {measured[1]:.4g}"
    elif spec.dtype.startswith("int") and any(word in spec.name.lower() for word in ("token", "ids")):
        found["kind"], origin["kind"] = "tokens", "source spec: integer input named like token ids"
    found["origin"] = origin
    return found


def _snap(measured: tuple[float, float] | None) -> tuple[float, float] | None:
    if measured is None:
        return None
    low, high = measured
    for lo, hi in CANONICAL_RANGES:
        if lo - SLACK * (hi - lo) <= low and high <= hi + SLACK * (hi - lo):
            return lo, hi
    return None


def _infer_output(spec: TensorSpec, task: str, declared_kind: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": "tensor", "shape": tuple(spec.shape), "dtype": spec.dtype}
    origin = {"shape": "source spec", "dtype": "source spec"}
    width = spec.shape[-1] if spec.shape else None
    named = spec.name.lower()
    if declared_kind == "embedding":
        found["kind"], origin["kind"] = "embedding", "output_kinds"
    elif declared_kind == "detection" or any(word in named for word in ("box", "bbox", "detection")):
        found["kind"], origin["kind"] = "boxes_scores", "output_kinds" if declared_kind else "output name"
    elif declared_kind == "classifier" or (task == "classifier" and len(spec.shape) == 2 and (width or 0) > 1):
        probabilities = any(word in named for word in ("prob", "softmax", "score"))
        found["kind"] = "probabilities" if probabilities else "logits"
        origin["kind"] = ("output_kinds" if declared_kind else "source: a classifier head") + \
            (", named like probabilities" if probabilities else ", not named like probabilities")
    found["origin"] = origin
    return found


def _merge(declared: Any, inferred: dict[str, Any], model: type) -> Any:
    """Declared fields over inferred ones; ``origin`` says which is which."""
    if declared is None:
        return model.model_validate(inferred)
    given = {field: getattr(declared, field) for field in declared.model_fields_set if field not in ("name", "origin")}
    origin = {**inferred.get("origin", {}), **{field: "declared" for field in given}}
    return model.model_validate({**inferred, **given, "name": declared.name, "origin": origin})


def resolve(declared: Contract | None, source: ModelSource, feeds: list[dict[str, np.ndarray]],
            output_kinds: dict[str, str] | None = None, layout: str | None = None,
            hints: dict[str, dict[str, Any]] | None = None) -> Contract:
    """The build's contract: ``declared`` completed by inference (``hints``: what the model's preprocessing layers
    say, per input), checked against the calibration ``feeds``."""
    declared = declared or Contract()
    _known_names(declared, source)
    measured = measured_ranges(feeds)
    inputs = tuple(_merge(declared.input(spec.name), {"name": spec.name, **_infer_input(
        spec, measured.get(spec.name), len(feeds), (hints or {}).get(spec.name))}, InputContract) for spec in source.inputs)
    outputs = tuple(_merge(declared.output(spec.name), {"name": spec.name, **_infer_output(spec, source.task, (output_kinds or {}).get(spec.name))},
                           OutputContract) for spec in source.outputs)
    contract = declared.model_copy(update={"inputs": inputs, "outputs": outputs, "source_sha256": source.sha256})
    problems = contradictions(contract, source, measured, len(feeds), layout, hints)
    if problems:
        raise ContractError("the contract contradicts the model or its calibration data:\n  " + "\n  ".join(problems),
                            "fix the contract (--contract) or the data: the artifact would be fed what the contract says")
    return contract


def _known_names(declared: Contract, source: ModelSource) -> None:
    for where, items, specs in (("inputs", declared.inputs, source.inputs), ("outputs", declared.outputs, source.outputs)):
        names = [spec.name for spec in specs]
        for item in items:
            if item.name not in names:
                from edgekit.errors import did_you_mean

                raise ContractError(f"the contract's {where} name '{item.name}', which the model does not have",
                                    f"{did_you_mean(item.name, names)}the model's {where}: {', '.join(names)}")


def contradictions(contract: Contract, source: ModelSource, measured: dict[str, tuple[float, float]], samples: int,
                   layout: str | None = None, hints: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Every contract line the model's specs, its own first ops (``hints``) or the calibration data contradict."""
    problems = []
    for spec in source.inputs:
        item = contract.input(spec.name)
        problems += _normalized_twice(contract, spec.name, (hints or {}).get(spec.name))
        expected, seen = item.value_range(), measured.get(spec.name)
        if expected is not None and seen is not None and not _within(seen, expected):
            field = "range" if item.range is not None else "mean"
            problems.append(f"{contract.line('inputs', spec.name, field)}{_std_text(item)} allows values "
                            f"{expected[0]:.4g} .. {expected[1]:.4g}, but the build's data ({samples} samples) hold "
                            f"{seen[0]:.4g} .. {seen[1]:.4g}")
        channels = channels_of(spec)
        if item.color is not None and channels is not None and (item.color == "GRAY") != (channels == 1):
            problems.append(f"{contract.line('inputs', spec.name, 'color')} but the input has {channels} channel(s)")
        if item.mean is not None and channels is not None and len(item.mean) not in (1, channels):
            problems.append(f"{contract.line('inputs', spec.name, 'mean')} has {len(item.mean)} values for {channels} channels")
        allowed = {spec.layout, *([layout] if layout else [])}
        if item.layout is not None and spec.layout not in ("other", "scalar") and item.layout not in allowed:
            problems.append(f"{contract.line('inputs', spec.name, 'layout')} but the model takes {spec.layout}")
    for spec in source.outputs:
        item = contract.output(spec.name)
        width = spec.shape[-1] if spec.shape else None
        if item.labels is not None and width is not None and len(item.labels) != width:
            problems.append(f"outputs.{spec.name}.labels has {len(item.labels)} labels but the output has {width} classes")
    return problems


def _normalized_twice(contract: Contract, name: str, hint: dict[str, Any] | None) -> list[str]:
    """A declared mean/std (or model_mean/model_std) that the model's own normalization contradicts."""
    if hint is None or "model_mean" not in hint:
        return []
    item, problems = contract.input(name), []
    seen = f"{hint['origin']}"
    if item.mean is not None and item.origin.get("mean") == "declared":
        problems.append(f"{contract.line('inputs', name, 'mean')} (std {list(item.std)}) asks the app to normalize, but "
                        f"the model normalizes this input itself ({seen}): the input would be normalized twice")
    for field in ("model_mean", "model_std"):
        declared, graph = getattr(item, field), np.asarray(hint[field])
        if declared is None or item.origin.get(field) != "declared":
            continue
        if len(declared) not in (1, graph.size) or not np.allclose(declared, graph, rtol=1e-4, atol=1e-6):
            problems.append(f"{contract.line('inputs', name, field)} but the model's graph says {list(hint[field])} "
                            f"({seen})")
    return problems


def _std_text(item: InputContract) -> str:
    return f" (std {list(item.std)})" if item.range is None and item.std is not None else ""


def _within(seen: tuple[float, float], expected: tuple[float, float]) -> bool:
    slack = SLACK * (expected[1] - expected[0])
    return expected[0] - slack <= seen[0] and seen[1] <= expected[1] + slack
