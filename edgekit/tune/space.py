"""The search space of a tune run, from the target profile, the routes, and the int8 rescue or the divergence trace.

Dimensions: the format (the profile's formats the model's framework has a route to), the precision (the
profile's supported precisions the route declares), and for int8 the quantization scheme fields the route
really passes to its quantizer (per-channel weights, calibration method, int16 activations), plus a few
meaningful float-layer sets instead of random layer subsets (``edgekit.tune.prime`` picks the source): the
float layers of the int8 rescue's curve, step by step (``curve_sets``), or prefixes of the ranked culprits
of the plain int8 artifact's trace (``prefix_sets``: the worst layer, the two worst, ...).
Measurement dimensions: inference threads (1 up to the device's cores, powers of two) and the accelerator
the profile's runtime section names for each format (TFLite delegate, ONNX Runtime execution provider,
OpenVINO device).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from edgekit.profiles import DeviceProfile

#: calibration methods each format's quantizer really distinguishes: ONNX Runtime's entropy calibrator gets 128
#: histogram bins for 128 levels from ``quantize_static``, one candidate threshold, so its scales are min/max's
_CALIBRATION_METHODS = {"onnx": ("minmax", "percentile"), "openvino": ("minmax", "percentile", "entropy")}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FormatSpace(_Frozen):
    """What may vary for one format."""

    precisions: tuple[str, ...]
    per_channel: tuple[bool, ...] = (True,)
    calibration_methods: tuple[str, ...] = ("minmax",)
    activations: tuple[str, ...] = ("int8",)
    float_sets: tuple[tuple[str, ...], ...] = ((),)  # the first is always "none in float"
    accelerator: str | None = None  # what the profile's runtime section names for this format


class SearchSpace(_Frozen):
    """Every dimension of a study; stored in the study so a resumed run searches the same space."""

    formats: dict[str, FormatSpace]
    threads: tuple[int, ...] = (1,)

    def size(self) -> int:
        """How many distinct configurations the space holds."""
        total = 0
        for space in self.formats.values():
            int8 = len(space.per_channel) * len(space.calibration_methods) * len(space.activations) * len(space.float_sets)
            total += sum(int8 if p == "int8" else 1 for p in space.precisions)
        return total * len(self.threads)


class TrialConfig(_Frozen):
    """One point of the space: what is built and how it is measured."""

    format: str
    precision: str
    quantization: dict[str, Any] = {}  # QuantScheme fields changed from the profile's
    float_layers: tuple[str, ...] = ()
    threads: int = 1
    accelerator: str | None = None

    def label(self) -> str:
        parts = [self.format, self.precision, *(f"{k}={v}" for k, v in sorted(self.quantization.items()))]
        if self.float_layers:
            parts.append(f"float:{len(self.float_layers)}")
        return " ".join([*parts, f"t{self.threads}"])


def accelerators(profile: DeviceProfile) -> dict[str, str]:
    runtime = profile.runtime
    return {"tflite": runtime.tflite_delegate, "onnx": runtime.onnx_execution_provider, "openvino": runtime.openvino_device,
            "executorch": "xnnpack"}


def thread_choices(cores: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to ``cores`` (and ``cores`` itself)."""
    found, n = [], 1
    while n < cores:
        found.append(n)
        n *= 2
    return tuple(dict.fromkeys([*found, max(1, cores)]))


def base_space(profile: DeviceProfile, framework: str, cores: int, formats: tuple[str, ...] | None = None,
               precisions: tuple[str, ...] | None = None) -> SearchSpace:
    """The space before any trace: formats and precisions the routes declare, the int8 scheme fields they honour."""
    from edgekit.routes import ROUTES

    chosen: dict[str, FormatSpace] = {}
    allowed = profile.supported_precisions or ("fp32", "fp16", "int8", "dynamic")
    runtime = accelerators(profile)
    for fmt in formats or profile.formats:
        route = ROUTES.get((framework, fmt))
        if route is None:
            continue
        found = tuple(p for p in route.precisions if p in allowed and (precisions is None or p in precisions))
        if not found:
            continue
        fields = route.scheme_fields
        int16 = "activations" in fields and (profile.int16_activations if profile.int16_activations is not None
                                              else profile.allow_float_fallback)
        chosen[fmt] = FormatSpace(
            precisions=found,
            per_channel=(True, False) if "per_channel" in fields else (profile.quantization.per_channel,),
            calibration_methods=_CALIBRATION_METHODS.get(fmt, ("minmax",)) if "calibration_method" in fields else ("minmax",),
            activations=("int8", "int16") if int16 else ("int8",),
            accelerator=runtime.get(fmt),
        )
    return SearchSpace(formats=chosen, threads=thread_choices(cores))


def prefix_sets(groups: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Float-layer sets from ranked culprit groups: none, the worst group, the two worst, ... (no repeats)."""
    sets, kept = [()], []
    for group in groups:
        kept.extend(n for n in group if n not in kept)
        sets.append(tuple(kept))
    return tuple(dict.fromkeys(sets))


def curve_sets(points: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Float-layer sets from the float layers of a rescue curve's points: none first, then in the order walked."""
    return tuple(dict.fromkeys([(), *(tuple(p) for p in points)]))


def with_sets(space: SearchSpace, sets: Mapping[str, tuple[tuple[str, ...], ...]]) -> SearchSpace:
    """The space with each format's float-layer sets (``sets[fmt]``, none in float first; a format without: none)."""
    formats = {fmt: fspace.model_copy(update={"float_sets": tuple(dict.fromkeys([(), *sets.get(fmt, ())]))})
               for fmt, fspace in space.formats.items()}
    return space.model_copy(update={"formats": formats})


def suggest(trial: Any, space: SearchSpace) -> TrialConfig:
    """The configuration an Optuna trial asks for; int8 dimensions are asked only for int8 trials (per format)."""
    fmt = trial.suggest_categorical("format", list(space.formats))
    fspace = space.formats[fmt]
    precision = trial.suggest_categorical(f"{fmt}.precision", list(fspace.precisions))
    threads = trial.suggest_categorical("threads", list(space.threads))
    quantization: dict[str, Any] = {}
    float_layers: tuple[str, ...] = ()
    if precision == "int8":
        quantization["per_channel"] = _pick(trial, f"{fmt}.per_channel", fspace.per_channel)
        quantization["calibration_method"] = _pick(trial, f"{fmt}.calibration_method", fspace.calibration_methods)
        quantization["activations"] = _pick(trial, f"{fmt}.activations", fspace.activations)
        index = _pick(trial, f"{fmt}.float_set", tuple(range(len(fspace.float_sets))))
        float_layers = fspace.float_sets[index]
        if quantization["activations"] == "int16" and fmt == "tflite":
            float_layers = ()  # the TFLite converter's int16x8 mode keeps no layer in float
    return TrialConfig(format=fmt, precision=precision, quantization=quantization, float_layers=float_layers,
                       threads=threads, accelerator=fspace.accelerator)


def _pick(trial: Any, name: str, choices: tuple[Any, ...]) -> Any:
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))


def params_of(config: TrialConfig, space: SearchSpace) -> dict[str, Any]:
    """The Optuna parameters that make ``suggest`` return ``config`` (for ``study.enqueue_trial``)."""
    fspace = space.formats[config.format]
    params: dict[str, Any] = {"format": config.format, f"{config.format}.precision": config.precision,
                              "threads": config.threads}
    if config.precision == "int8":
        q = config.quantization
        for name, value, choices in (("per_channel", q.get("per_channel"), fspace.per_channel),
                                     ("calibration_method", q.get("calibration_method"), fspace.calibration_methods),
                                     ("activations", q.get("activations"), fspace.activations)):
            if len(choices) > 1 and value is not None:
                params[f"{config.format}.{name}"] = value
        if len(fspace.float_sets) > 1:
            params[f"{config.format}.float_set"] = fspace.float_sets.index(config.float_layers)
    return params
