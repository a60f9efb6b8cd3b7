"""``edgekit.profile``: measure artifacts on this machine or on a device running ``edgekit agent``."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from edgekit.errors import DataError, InvalidOptionError, ModelFileError
from edgekit.profiling.local import Event, Job, ProfilingError, ResultBuilder, run_child
from edgekit.profiling.protocol import Settings
from edgekit.profiling.report import ArtifactProfile, Parity, ProfileReport, now

MANIFEST = "edgekit-manifest.json"
CPU = {"tflite": None, "onnx": "CPUExecutionProvider", "openvino": "CPU"}
ACCELERATORS = {
    "cpu": CPU,
    "gpu": {"tflite": "gpu", "onnx": "CUDAExecutionProvider", "openvino": "GPU"},
    "npu": {"tflite": "npu", "onnx": "QNNExecutionProvider", "openvino": "NPU"},
}


class ArtifactRef(BaseModel):
    """An artifact to profile: its main file, companion files and what the manifest says of it."""

    model_config = ConfigDict(frozen=True)

    path: Path
    format: str
    precision: str | None = None
    files: tuple[Path, ...]
    size_bytes: int


def profile(
    target: str | Path | list[str | Path], *, device: str = "local:cpu", device_profile: str | None = None,
    threads: int | None = 1, runs: int = 100, min_seconds: float = 2.0, warmup: int = 10, max_runs: int = 100_000,
    affinity: tuple[int, ...] | None = None, op_profile_runs: int = 20, dataset: str | Path | None = None,
    token: str | None = None, timeout: float = 600.0, progress: Callable[[Event], None] | None = None,
) -> ProfileReport:
    """Profile an artifact, a list of artifacts or every artifact of a build folder on ``device``.

    ``device``: ``local:cpu`` (default), ``local:gpu``, ``local:npu`` or ``agent://HOST:PORT`` (with the
    agent's ``token``, default ``$EDGEKIT_AGENT_TOKEN``); ``device_profile`` (a profile name or file) picks
    the TFLite delegate, ONNX Runtime execution provider and OpenVINO device instead. A missing accelerator
    is an error, never a silent CPU run. ``dataset`` adds accuracy (and parity against the build's fp32
    artifact run on this host). Results that could not finish are kept with status ``partial``/``failed``.
    """
    try:
        settings = Settings(warmup_runs=warmup, min_runs=runs, min_seconds=min_seconds, max_runs=max(max_runs, runs),
                            threads=threads, affinity=affinity, op_profile_runs=op_profile_runs, timeout_seconds=timeout)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidOptionError(f"profiling setting {'.'.join(map(str, error['loc']))}: {error['msg']}",
                                 "see `edgekit profile --help` for the allowed values") from None
    if not device.startswith(("agent://", "local")):
        raise ProfilingError(f"unknown device '{device}'", "use local:cpu, local:gpu, local:npu or agent://HOST:PORT")
    refs = resolve_artifacts(target)
    devices = _runtime_devices(device, device_profile)
    if dataset is not None and not Path(dataset).exists():
        raise DataError(f"dataset not found: {dataset}", "give an .npz (x, y) or a folder of class-named image folders")
    dataset_path = str(Path(dataset).resolve()) if dataset is not None else None
    emit = progress or (lambda event: None)
    if device.startswith("agent://"):
        from edgekit.agent.client import AgentClient

        client = AgentClient(device, token=token, timeout=timeout)
        host = client.info().host
        execute = client.run_job
    else:
        from edgekit.profiling.devices import host_info

        host, execute = host_info(), _run_local
    results, outputs = [], {}
    for ref in refs:
        job = Job(path=str(ref.path), format=ref.format, runtime_device=devices[ref.format], settings=settings,
                  dataset=dataset_path, return_outputs=dataset is not None)
        builder = ResultBuilder({"artifact": str(ref.path), "format": ref.format, "precision": ref.precision,
                                 "size_bytes": ref.size_bytes, "device": device})

        def forward(event: Event, builder: ResultBuilder = builder, name: str = ref.path.name) -> None:
            builder.feed(event)
            emit({**event, "artifact": name})

        execute(job, ref, forward)
        result = builder.result()
        if result.accuracy is not None:  # the agent knows the dataset under its upload name
            result = result.model_copy(update={"accuracy": result.accuracy.model_copy(update={"dataset": Path(dataset).name})})
        results.append(result)
        outputs[ref.path] = builder.outputs
    if dataset is not None:
        results = _with_parity(results, refs, outputs, device, dataset_path, settings)
    return ProfileReport(created=now(), device=device, host=host, settings=settings, results=tuple(results))


def _run_local(job: Job, ref: ArtifactRef, on_event: Callable[[Event], None]) -> None:
    run_child(job, on_event)


def _runtime_devices(device: str, device_profile: str | None) -> dict[str, str | None]:
    """Per format, the TFLite delegate / ONNX Runtime provider / OpenVINO device to ask the runner for."""
    if device_profile is not None:
        from edgekit.profiles import load_profile

        runtime = load_profile(device_profile).runtime
        delegate = None if runtime.tflite_delegate in ("xnnpack", "none") else runtime.tflite_delegate
        return {"tflite": delegate, "onnx": runtime.onnx_execution_provider, "openvino": runtime.openvino_device}
    if device.startswith("agent://"):
        return CPU
    kind = device.partition(":")[2].lower() or "cpu"
    if kind not in ACCELERATORS:
        raise ProfilingError(f"unknown local device '{kind}'", "use local:cpu, local:gpu or local:npu, or --target PROFILE")
    return ACCELERATORS[kind]


def resolve_artifacts(target: str | Path | list[str | Path]) -> list[ArtifactRef]:
    """Artifacts named by ``target``: files, or a build folder (every artifact of its manifest)."""
    if isinstance(target, (list, tuple)):
        return [ref for item in target for ref in resolve_artifacts(item)]
    path = Path(target)
    if not path.exists():
        raise ModelFileError(f"artifact not found: {path}", "give a .tflite, .onnx or OpenVINO .xml file, or a build folder")
    if path.is_dir():
        entries = _manifest_entries(path)
        if not entries:
            raise ModelFileError(f"{path} has no {MANIFEST}", "give a build folder written by edgekit convert, or artifact files")
        return [_ref_from_entry(path, entry) for entry in entries]
    for entry in _manifest_entries(path.parent):
        if Path(entry["path"]).name == path.name:
            return [_ref_from_entry(path.parent, entry)]
    fmt = sniff_artifact(path)
    files: tuple[Path, ...] = (path,)
    if fmt == "openvino":
        files = (path, path.with_suffix(".bin"))
    elif fmt == "onnx":
        files = (path, *_onnx_external_data(path))
    missing = [f for f in files if not f.exists()]
    if missing:
        raise ModelFileError(f"{missing[0].name} is missing beside {path.name}", "an OpenVINO IR needs its .bin next to the .xml")
    return [ArtifactRef(path=path, format=fmt, files=files, size_bytes=sum(f.stat().st_size for f in files))]


def _onnx_external_data(path: Path) -> tuple[Path, ...]:
    """The external-data files of an ONNX model (checked to stay beside it), or none without ``onnx``."""
    from edgekit.sources.onnx import external_data_files

    try:
        files = tuple(external_data_files(path))
    except ImportError:  # no onnx package here: the runtime's own check applies
        return ()
    nested = [f for f in files if f.parent != path.parent]
    if nested:
        raise ModelFileError(f"{path.name} keeps external data in a sub-folder ({nested[0].name})",
                             "save the model with its external data beside it (onnx.save_model(..., location='model.onnx.data'))")
    return files


def _manifest_entries(folder: Path) -> list[dict[str, Any]]:
    from edgekit.manifest import read_manifest

    if not (folder / MANIFEST).is_file():
        return []
    entries = read_manifest(folder)["artifacts"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "path" in e for e in entries):
        raise ModelFileError(f"{folder / MANIFEST} lists its artifacts in a form edgekit cannot read", "rebuild the artifacts")
    return entries


def _ref_from_entry(folder: Path, entry: dict[str, Any]) -> ArtifactRef:
    files = tuple(folder / Path(f).name for f in entry.get("files") or [entry["path"]])
    main = folder / Path(entry["path"]).name
    for file in files:
        if not file.is_file():
            raise ModelFileError(f"{file} listed in the manifest is missing", "rebuild the artifacts or copy the whole folder")
    return ArtifactRef(path=main, format=entry["format"], precision=entry.get("precision"), files=files,
                       size_bytes=sum(f.stat().st_size for f in files))


def sniff_artifact(path: Path) -> str:
    """The artifact format by content: TFLite flatbuffer, OpenVINO IR XML or ONNX protobuf."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.lstrip().startswith((b"<?xml", b"<net")):
        if b"<net" in head:
            return "openvino"
    from edgekit.sources.sniff import _looks_like_onnx

    if head and _looks_like_onnx(head):
        return "onnx"
    raise ModelFileError(f"{path.name} is not a TFLite, ONNX or OpenVINO artifact",
                         "profile the files that edgekit convert wrote")


def _with_parity(results: list[ArtifactProfile], refs: list[ArtifactRef], outputs: dict, device: str,
                 dataset: str, settings: Settings) -> list[ArtifactProfile]:
    """Compare each artifact's dataset outputs with the build's fp32 artifact run on this host."""
    from edgekit.profiling.accuracy import parity

    reference = _reference_for(refs)
    if reference is None:
        return results
    ref_outputs = outputs.get(reference.path) if device.startswith("local") else None
    if ref_outputs is None:
        once = settings.model_copy(update={"min_runs": 1, "min_seconds": 0.0, "warmup_runs": 0, "op_profile_runs": 0})
        job = Job(path=str(reference.path), format=reference.format, dataset=dataset, return_outputs=True, settings=once)
        builder = ResultBuilder({})
        run_child(job, builder.feed)
        ref_outputs = builder.outputs
    if ref_outputs is None:
        return results
    updated = []
    for result, ref in zip(results, refs):
        mine = outputs.get(ref.path)
        if result.accuracy is not None and mine is not None and mine.shape == ref_outputs.shape:
            cosine, max_abs, top1 = parity(ref_outputs, mine, result.accuracy.output)
            check = Parity(reference=f"{reference.path.name} on this host", output=result.accuracy.output,
                           samples=len(mine), cosine=cosine, max_abs_error=max_abs, top1_agreement=top1)
            result = result.model_copy(update={"accuracy": result.accuracy.model_copy(update={"parity": check})})
        updated.append(result)
    return updated


def _reference_for(refs: list[ArtifactRef]) -> ArtifactRef | None:
    fp32 = [r for r in refs if r.precision == "fp32"]
    if fp32:
        return fp32[0]
    folders = {r.path.parent for r in refs}
    for folder in folders:
        for entry in _manifest_entries(folder):
            if entry.get("precision") == "fp32":
                return _ref_from_entry(folder, entry)
    return None
