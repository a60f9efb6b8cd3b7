"""Reference pre/post-processing code generated per artifact from its contract: Python (host and agent) for every
artifact, Kotlin (Android) and C++ (LiteRT) for TFLite ones. Text templates (``string.Template``) under
``templates/``, written into the build folder's ``snippets/`` so the app developer copies what matches."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from edgekit.atomic import atomic_write_text
from edgekit.contract.schema import Contract, InputContract, OutputContract

SNIPPETS = "snippets"
RUNTIME = {
    "tflite": ("    from ai_edge_litert.interpreter import Interpreter\n\n"
               "    interpreter = Interpreter(model_path=\"{file}\")\n    interpreter.allocate_tensors()\n"
               "    interpreter.set_tensor(interpreter.get_input_details()[0][\"index\"], feed)\n    interpreter.invoke()\n"
               "    return postprocess(interpreter.get_tensor(interpreter.get_output_details()[0][\"index\"]))\n"),
    "onnx": ("    import onnxruntime\n\n    session = onnxruntime.InferenceSession(\"{file}\", providers=[\"CPUExecutionProvider\"])\n"
             "    return postprocess(session.run([OUTPUT], {{INPUT: feed}})[0])\n"),
    "openvino": ("    import openvino\n\n    compiled = openvino.Core().compile_model(\"{file}\", \"CPU\")\n"
                 "    return postprocess(compiled({{INPUT: feed}})[compiled.output(0)])\n"),
    "executorch": ("    import torch\n    from executorch.runtime import Runtime\n\n"
                   "    method = Runtime.get().load_program(\"{file}\").load_method(\"forward\")\n"
                   "    return postprocess(method.execute([torch.from_numpy(feed)])[0].numpy())\n"),
}


def _template(name: str) -> Template:
    return Template(resources.files("edgekit.contract").joinpath("templates", name).read_text(encoding="utf-8"))


def pixel_affine(item: InputContract, channels: int) -> tuple[list[float], list[float]]:
    """Per channel ``(A, B)`` with ``x = pixel * A + B`` for pixels in [0, 255]: the contract's range or mean/std."""
    if item.mean is not None and item.std is not None:
        means = list(item.mean) * (channels if len(item.mean) == 1 else 1)
        stds = list(item.std) * (channels if len(item.std) == 1 else 1)
        return [1.0 / (255.0 * s) for s in stds], [-m / s for m, s in zip(means, stds)]
    low, high = item.range or (0.0, 1.0)
    return [(high - low) / 255.0] * channels, [low] * channels


def _image_geometry(item: InputContract) -> tuple[int, int, int, bool]:
    shape = tuple(d or 1 for d in (item.shape or (1, 1, 1, 1)))
    if len(shape) != 4:
        return 1, int(shape[-1]), 1, False
    first = item.layout == "NCHW"
    height, width, channels = (shape[2], shape[3], shape[1]) if first else (shape[1], shape[2], shape[3])
    return int(height), int(width), int(channels), first


def values(contract: Contract, artifact: Path) -> dict[str, Any]:
    """Every placeholder of the templates, from the artifact's contract."""
    item = contract.inputs[0] if contract.inputs else InputContract(name="input")
    out = contract.outputs[0] if contract.outputs else OutputContract(name="output")
    height, width, channels, first = _image_geometry(item)
    a, b = pixel_affine(item, channels)
    in_quant = (item.scale, item.zero_point) if item.scale is not None and item.dtype not in (None, "float32") else None
    out_quant = (out.scale, out.zero_point) if out.scale is not None and out.dtype not in (None, "float32") else None
    labels = list(out.labels or [])
    in_type = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t"}.get(item.dtype or "", "int8_t")
    out_type = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t"}.get(out.dtype or "", "int8_t")
    qmin, qmax = {"int8_t": (-128, 127), "uint8_t": (0, 255), "int16_t": (-32768, 32767)}[in_type]
    floats = lambda xs: ", ".join(f"{x:.8g}f" for x in xs)  # noqa: E731
    return {
        "artifact": artifact.name, "format": contract.format, "precision": contract.precision, "schema": contract.schema_,
        "build": (contract.build_hash or "?")[:12], "input_name": item.name, "shape": list(item.shape or ()),
        "layout": item.layout or "", "input_kind": item.kind, "color": json.dumps(item.color), "color_name": item.color or "raw",
        "resize": item.resize or "stretch", "range": repr(list(item.range) if item.range else None),
        "mean": repr(list(item.mean) if item.mean else None), "std": repr(list(item.std) if item.std else None), "input_dtype": item.dtype or "float32",
        "input_quant": repr(in_quant), "sample_rate": repr(item.sample_rate), "output_name": out.name, "output_kind": out.kind,
        "output_quant": repr(out_quant), "labels": json.dumps(labels), "threshold": repr(out.score_threshold),
        "runtime": RUNTIME.get(contract.format or "", RUNTIME["onnx"]).format(file=artifact.name),
        "class_name": re.sub(r"\W", "_", artifact.stem).title().replace("_", ""), "height": height, "width": width,
        "channels": channels, "channels_first": str(first).lower(), "bgr": str(item.color == "BGR").lower(),
        "a_list": floats(a), "b_list": floats(b), "kt_input_quantized": str(in_quant is not None).lower(),
        "cpp_input_quantized": str(in_quant is not None).lower(), "input_scale": f"{(in_quant or (1.0, 0))[0]:.8g}",
        "input_zero_point": (in_quant or (1.0, 0))[1], "kt_output_quantized": str(out_quant is not None).lower(),
        "cpp_output_quantized": str(out_quant is not None).lower(), "output_scale": f"{(out_quant or (1.0, 0))[0]:.8g}",
        "output_zero_point": (out_quant or (1.0, 0))[1], "kt_labels": ", ".join(json.dumps(x) for x in labels),
        "cpp_labels": ", ".join(json.dumps(x) for x in labels), "kt_threshold": f"{out.score_threshold or 0.0:.6g}",
        "cpp_threshold": f"{out.score_threshold or 0.0:.6g}f", "cpp_logits": str(out.kind == "logits").lower(),
        "cpp_input_type": in_type, "cpp_output_type": out_type, "cpp_qmin": qmin, "cpp_qmax": qmax,
    }


def render(contract: Contract, artifact: Path) -> dict[str, str]:
    """Snippet file name -> text for one artifact."""
    fills = values(contract, artifact)
    stem = artifact.name.replace(".", "_")
    texts = {f"{stem}.py": _template("python.py.tmpl").substitute(fills)}
    if contract.format == "tflite" and (not contract.inputs or contract.inputs[0].kind == "image"):
        texts[f"{stem}.kt"] = _template("kotlin.kt.tmpl").substitute(fills)
        texts[f"{stem}.cc"] = _template("cpp.cc.tmpl").substitute(fills)
    return texts


def write_snippets(artifacts: list[Any], folder: Path) -> list[Path]:
    """The snippets of every artifact that has a contract, written under ``folder``."""
    written = []
    for artifact in artifacts:
        if artifact.contract is None:
            continue
        for name, text in render(artifact.contract, Path(artifact.path)).items():
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / name, text)
            written.append(folder / name)
    return written
