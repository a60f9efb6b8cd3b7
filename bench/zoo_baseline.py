"""The zoo's baseline: each conversion done by calling the underlying converter directly, one documented call
each (see ``bench/zoo.py``); ``baseline_artifacts`` yields the artifact made, or the exception it raised."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from zoo_models import Feed, Source, ZooModel

FORMATS = ("tflite", "onnx", "openvino", "executorch")
# the direct ExecuTorch lowering runs in a child process bounded to this many seconds: on an unrolled
# recurrent layer (resemblyzer's LSTM over 160 steps) it made hundreds of XNNPACK delegates and had not
# finished after 38 minutes
EXECUTORCH_SECONDS = 600
_LOWER = """
import sys, torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower
program = torch.export.load(sys.argv[1])
open(sys.argv[2], "wb").write(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
"""


def rename(feed: Feed, names: list[str]) -> Feed:
    """The feed keyed by the artifact's input names: same name first, then by position among the rest."""
    out = {n: feed[n] for n in names if n in feed}
    rest_names = [n for n in names if n not in out]
    rest_values = [v for k, v in feed.items() if k not in out]
    out.update(zip(rest_names, rest_values))
    return out



def _calibration_reader(calibration: list[Feed], names: list[str]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([rename(f, names) for f in calibration])

        def get_next(self):
            return next(self.items, None)

    return Reader()


def _ort_int8(fp32: Path, out: Path, calibration: list[Feed]) -> Path:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, quantize_static

    names = [i.name for i in ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()]
    quantize_static(str(fp32), str(out), _calibration_reader(calibration, names), quant_format=QuantFormat.QDQ)
    return out


def _nncf_int8(ov_model: Any, out: Path, calibration: list[Feed]) -> Path:
    import nncf
    import openvino as ov

    names = [next(iter(p.get_names()), "") for p in ov_model.inputs]
    dataset = nncf.Dataset(calibration, lambda f: [rename(f, names)[n] for n in names])
    ov.save_model(nncf.quantize(ov_model, dataset), str(out))
    return out


def baseline_artifacts(model: ZooModel, path: Path, source: Source, calibration: list[Feed], work: Path,
                       formats: tuple[str, ...] = FORMATS):
    """Yield ((format, precision), path-or-exception) for the direct converter calls of ``formats``."""
    if any(f != "executorch" for f in formats):
        for key, made in _baseline_artifacts(model, path, source, calibration, work):
            if key[0] in formats:
                yield key, made
    if "executorch" in formats:
        yield from _executorch_baseline(model, path, source, calibration, work)


def _torch_program(model: ZooModel, path: Path, source: Source, example: tuple) -> tuple[Any, Any]:
    """(module, ExportedProgram-or-None) the direct torch calls start from: a .pt2 through ``torch.export.load``."""
    import torch

    if model.kind == "torch-pt2":
        program = torch.export.load(path)
        return program.module(), program
    return source.framework_model.eval(), None


def _executorch_baseline(model: ZooModel, path: Path, source: Source, calibration: list[Feed], work: Path):
    """torch.export -> to_edge_transform_and_lower(XnnpackPartitioner) -> .pte, int8 through the pt2e XNNPACK
    quantizer (torchao.quantization.pt2e): ExecuTorch's documented flow, for the models that are torch modules."""
    if not model.kind.startswith("torch-"):
        source_kind = "ONNX" if model.kind == "onnx" else "Keras"
        none = f"no direct {source_kind} -> ExecuTorch converter: ExecuTorch lowers torch.export programs"
        yield ("executorch", "fp32"), RuntimeError(none)
        yield ("executorch", "int8"), RuntimeError(none)
        return
    import torch

    example = (torch.from_numpy(calibration[0]["x"]),)
    net, loaded = _torch_program(model, path, source, example)

    def lower(program, precision: str) -> Path:
        out = work / f"model_{precision}.pte"
        saved = work / f"model_{precision}_exported.pt2"
        torch.export.save(program, saved)
        return _bounded_lowering(saved, out)

    def int8() -> Path:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(torch.export.export(net, example).module(), quantizer)
        for feed in calibration:
            prepared(torch.from_numpy(feed["x"]))
        return lower(torch.export.export(convert_pt2e(prepared), example), "int8")

    for key, make in ((("executorch", "fp32"), lambda: lower(loaded or torch.export.export(net, example), "fp32")),
                      (("executorch", "int8"), int8)):
        try:
            yield key, make()
        except Exception as exc:  # noqa: BLE001 - the baseline's failure is the finding
            yield key, exc


class ChildLoweringError(RuntimeError):
    """The direct lowering's child process failed: the message is the last line it wrote (its exception)."""


def _bounded_lowering(saved: Path, out: Path) -> Path:
    """``to_edge_transform_and_lower(XnnpackPartitioner()).to_executorch()`` of the program saved at ``saved``, in
    a child process stopped after ``EXECUTORCH_SECONDS`` (its failure or the time out is the exception)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _LOWER, str(saved), str(out)], cwd=out.parent, capture_output=True,
                              text=True, timeout=EXECUTORCH_SECONDS)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"to_edge_transform_and_lower did not finish in {EXECUTORCH_SECONDS} s (stopped)") from None
    if proc.returncode or not out.exists():
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise ChildLoweringError(lines[-1] if lines else f"exit code {proc.returncode}")
    return out


def _baseline_artifacts(model: ZooModel, path: Path, source: Source, calibration: list[Feed], work: Path):
    import openvino as ov

    def attempt(key, fn):
        try:
            return key, fn()
        except Exception as exc:  # noqa: BLE001 - the baseline's failure is the finding
            return key, exc

    onnx32, ov32 = work / "model.onnx", work / "model.xml"
    if model.kind == "onnx":
        none = "no direct ONNX -> TFLite converter in this stack (onnx2tf/onnx-tf pin old TF; litert-torch takes no ONNX)"
        yield ("tflite", "fp32"), RuntimeError(none)
        yield ("tflite", "int8"), RuntimeError(none)
        yield attempt(("onnx", "fp32"), lambda: Path(shutil.copy(path, onnx32)))
        yield attempt(("onnx", "int8"), lambda: _ort_int8(path, work / "model_int8.onnx", calibration))

        def openvino32():
            ov.save_model(ov.convert_model(str(path)), str(ov32), compress_to_fp16=False)
            return ov32
        yield attempt(("openvino", "fp32"), openvino32)
        yield attempt(("openvino", "int8"), lambda: _nncf_int8(ov.convert_model(str(path)), work / "model_int8.xml", calibration))
        return
    if model.kind == "keras2-h5":
        import tensorflow as tf
        import tf2onnx

        net = source.framework_model

        def tflite(int8: bool):
            return _tflite(tf.lite.TFLiteConverter.from_keras_model(net), int8, source, calibration, work)

        def onnx_fp32():
            tf2onnx.convert.from_keras(net, output_path=str(onnx32))
            return onnx32
        yield attempt(("tflite", "fp32"), lambda: tflite(False))
        yield attempt(("tflite", "int8"), lambda: tflite(True))
        yield attempt(("onnx", "fp32"), onnx_fp32)
        yield attempt(("onnx", "int8"), lambda: _ort_int8(onnx32 if onnx32.exists() else onnx_fp32(), work / "model_int8.onnx",
                                                          calibration))

        def openvino32():
            ov.save_model(ov.convert_model(net), str(ov32), compress_to_fp16=False)
            return ov32
        yield attempt(("openvino", "fp32"), openvino32)
        yield attempt(("openvino", "int8"), lambda: _nncf_int8(ov.convert_model(net), work / "model_int8.xml", calibration))
        return
    if model.kind == "keras2-savedmodel":
        yield from _savedmodel_baseline(path, source, calibration, work)
        return
    if model.kind == "keras3":
        net = source.framework_model
        net(calibration[0][source.input_names[0]])  # Keras 3 export needs a model called once

        def export(fmt: str, out: Path):
            net.export(str(out), format=fmt)
            return out

        def tflite_int8():
            import tensorflow as tf

            converter = tf.lite.TFLiteConverter.from_keras_model(net)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([f[source.input_names[0]]] for f in calibration)
            out = work / "model_int8.tflite"
            out.write_bytes(converter.convert())
            return out
        yield attempt(("tflite", "fp32"), lambda: export("litert", work / "model_fp32.tflite"))
        yield attempt(("tflite", "int8"), tflite_int8)
        yield attempt(("onnx", "fp32"), lambda: export("onnx", onnx32))
        yield attempt(("onnx", "int8"), lambda: _ort_int8(onnx32 if onnx32.exists() else export("onnx", onnx32),
                                                          work / "model_int8.onnx", calibration))
        yield attempt(("openvino", "fp32"), lambda: export("openvino", ov32))
        yield attempt(("openvino", "int8"), lambda: _nncf_int8(ov.convert_model(net), work / "model_int8.xml", calibration))
        return
    if model.kind.startswith("torch-"):
        import torch

        example = (torch.from_numpy(calibration[0]["x"]),)
        net, program = _torch_program(model, path, source, example)
        ov_source = {"input_model": program} if program is not None else {"input_model": net, "example_input": example}

        def tflite32():
            import litert_torch

            out = work / "model_fp32.tflite"
            litert_torch.convert(net, example).export(str(out))
            return out

        def onnx_fp32():
            torch.onnx.export(program if program is not None else net, example, str(onnx32))
            return onnx32

        def openvino32():
            ov.save_model(ov.convert_model(**ov_source), str(ov32), compress_to_fp16=False)
            return ov32
        yield attempt(("tflite", "fp32"), tflite32)
        yield ("tflite", "int8"), RuntimeError("litert_torch has no one-call int8 conversion (needs a PT2E quantizer setup)")
        yield attempt(("onnx", "fp32"), onnx_fp32)
        yield attempt(("onnx", "int8"), lambda: _ort_int8(onnx32 if onnx32.exists() else onnx_fp32(), work / "model_int8.onnx",
                                                          calibration))
        yield attempt(("openvino", "fp32"), openvino32)
        yield attempt(("openvino", "int8"),
                      lambda: _nncf_int8(ov.convert_model(**ov_source), work / "model_int8.xml", calibration))
        return
    raise ValueError(model.kind)


def _tflite(converter: Any, int8: bool, source: Source, calibration: list[Feed], work: Path) -> Path:
    """The TFLite converter's file: as it is, or int8 with its documented representative dataset."""
    import tensorflow as tf

    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([f[source.input_names[0]]] for f in calibration)
    out = work / f"model_{'int8' if int8 else 'fp32'}.tflite"
    out.write_bytes(converter.convert())
    return out


def _savedmodel_baseline(path: Path, source: Source, calibration: list[Feed], work: Path):
    """A SavedModel folder given to each converter as a folder: ``TFLiteConverter.from_saved_model``,
    tf2onnx's documented ``python -m tf2onnx.convert --saved-model``, ``openvino.convert_model(folder)``."""
    import openvino as ov
    import tensorflow as tf

    def tflite(int8: bool) -> Path:
        return _tflite(tf.lite.TFLiteConverter.from_saved_model(str(path)), int8, source, calibration, work)

    def onnx_fp32() -> Path:
        out = work / "model.onnx"
        if not out.exists():
            done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(path), "--output", str(out)],
                                  capture_output=True, text=True, timeout=1800)
            if done.returncode or not out.exists():
                raise RuntimeError(f"tf2onnx exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
        return out

    def openvino32() -> Path:
        ov.save_model(ov.convert_model(str(path)), str(work / "model.xml"), compress_to_fp16=False)
        return work / "model.xml"

    for key, make in ((("tflite", "fp32"), lambda: tflite(False)), (("tflite", "int8"), lambda: tflite(True)),
                      (("onnx", "fp32"), onnx_fp32),
                      (("onnx", "int8"), lambda: _ort_int8(onnx_fp32(), work / "model_int8.onnx", calibration)),
                      (("openvino", "fp32"), openvino32),
                      (("openvino", "int8"),
                       lambda: _nncf_int8(ov.convert_model(str(path)), work / "model_int8.xml", calibration))):
        try:
            yield key, make()
        except Exception as exc:  # noqa: BLE001 - the baseline's failure is the finding
            yield key, exc
