"""``edgekit.profile``: measure artifacts on this machine or on a device running ``edgekit agent``."""
from __future__ import annotations

import threading
from pathlib import Path

from pydantic import ValidationError

from edgekit.errors import Cancelled, DataError, InvalidOptionError
from edgekit.profiling.artifacts import ArtifactRef, manifest_entries, ref_from_entry, resolve_artifacts
from edgekit.profiling.local import Event, Job, ProfilingError, ResultBuilder, run_child
from edgekit.profiling.protocol import Settings
from edgekit.profiling.report import ArtifactProfile, Parity, ProfileReport, now
from edgekit.progress import ProgressCallback, ProgressEvent, ignore

LOCAL_KINDS = ("cpu", "gpu", "npu")
AGENT_SCHEMES = ("agent://", "http://", "https://")  # https: an agent started with --tls


def profile(
    target: str | Path | list[str | Path], *, device: str = "local:cpu", device_profile: str | None = None,
    threads: int | None = 1, runs: int = 100, min_seconds: float = 2.0, warmup: int = 10, max_runs: int = 100_000,
    affinity: tuple[int, ...] | None = None, op_profile_runs: int = 20, dataset: str | Path | None = None,
    token: str | None = None, timeout: float = 600.0, progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None, agent_fingerprint: str | None = None,
) -> ProfileReport:
    """Profile an artifact, a list of artifacts or every artifact of a build folder on ``device``.

    ``device``: ``local:cpu`` (default), ``local:gpu``, ``local:npu`` or ``agent://HOST:PORT`` (with the
    agent's ``token``, default ``$EDGEKIT_AGENT_TOKEN``; ``https://HOST:PORT`` with ``agent_fingerprint``, the
    SHA-256 of the certificate an agent started with ``--tls`` prints); ``device_profile`` (a profile name or file) picks
    the TFLite delegate, ONNX Runtime execution provider and OpenVINO device instead. A missing accelerator
    is an error, never a silent CPU run. ``dataset`` adds accuracy (and parity against the build's fp32
    artifact run on this host). Results that could not finish are kept with status ``partial``/``failed``.
    ``progress`` receives ``ProgressEvent(stage="<phase>:<artifact file>", fraction, message)``; setting
    ``cancel`` stops the run within a fraction of a second (the measuring process is killed) and raises
    ``Cancelled``.
    """
    try:
        settings = Settings(warmup_runs=warmup, min_runs=runs, min_seconds=min_seconds, max_runs=max(max_runs, runs),
                            threads=threads, affinity=affinity, op_profile_runs=op_profile_runs, timeout_seconds=timeout)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidOptionError(f"profiling setting {'.'.join(map(str, error['loc']))}: {error['msg']}",
                                 "see `edgekit profile --help` for the allowed values") from None
    if not device.startswith((*AGENT_SCHEMES, "local")):
        raise ProfilingError(f"unknown device '{device}'",
                             "use local:cpu, local:gpu, local:npu, agent://HOST:PORT or https://HOST:PORT")
    refs = resolve_artifacts(target)
    _check_contracts(refs)
    devices = _runtime_devices(device, device_profile)
    if dataset is not None and not Path(dataset).exists():
        raise DataError(f"dataset not found: {dataset}", "give an .npz (x, y) or a folder of class-named image folders")
    dataset_path = str(Path(dataset).resolve()) if dataset is not None else None
    emit = progress or ignore
    cancel = cancel or threading.Event()
    from edgekit.profiling.targets import open_device

    target_device = open_device(device, token, timeout, agent_fingerprint)
    if not device.startswith(AGENT_SCHEMES):
        from edgekit.formats import get_format

        for ref in refs:  # a missing runtime is named here, before any measuring process starts
            get_format(ref.format).default_runner().require(ref.format)
    host = target_device.host_info()
    results, outputs = [], {}
    for ref in refs:
        if cancel.is_set():
            raise Cancelled("profiling was cancelled", "nothing of this run was kept")
        job = Job(path=str(ref.path), format=ref.format, runtime_device=devices[ref.format], settings=settings,
                  dataset=dataset_path, return_outputs=dataset is not None)
        builder = ResultBuilder({"artifact": str(ref.path), "format": ref.format, "precision": ref.precision,
                                 "size_bytes": ref.size_bytes, "device": device})

        def forward(event: Event, builder: ResultBuilder = builder, name: str = ref.path.name) -> None:
            builder.feed(event)
            if event.get("event") == "progress":
                emit(ProgressEvent(f"{event.get('stage', 'profile')}:{name}", float(event.get("fraction") or 0.0),
                                   str(event.get("message") or "")))

        target_device.run_job(job, ref, forward, cancel)
        _refused(builder)
        result = builder.result()
        if result.accuracy is not None:  # the agent knows the dataset under its upload name
            result = result.model_copy(update={"accuracy": result.accuracy.model_copy(update={"dataset": Path(dataset).name})})
        results.append(result)
        outputs[ref.path] = builder.outputs
    if dataset is not None:
        results = _with_parity(results, refs, outputs, device, dataset_path, settings)
    return ProfileReport(created=now(), device=device, host=host, settings=settings, results=tuple(results))


def _check_contracts(refs: list[ArtifactRef]) -> None:
    """Each artifact's contract against its build's manifest: a mismatch is an error before anything runs."""
    from edgekit.contract.stamp import verify_beside

    for ref in refs:
        verify_beside(ref.path)


def _refused(builder: ResultBuilder) -> None:
    """A data set the artifact's contract refused ends the run with the contract line it breaks."""
    if builder.error is not None and builder.error.get("kind") == "ContractError":
        from edgekit.errors import ContractError

        raise ContractError(str(builder.error.get("message")), str(builder.error.get("hint") or ""))


def _runtime_devices(device: str, device_profile: str | None) -> dict[str, str | None]:
    """Per format, the TFLite delegate / ONNX Runtime provider / OpenVINO device to ask the runner for."""
    if device_profile is not None:
        from edgekit.profiles import load_profile

        runtime = load_profile(device_profile).runtime
        delegate = None if runtime.tflite_delegate in ("xnnpack", "none") else runtime.tflite_delegate
        return {"tflite": delegate, "onnx": runtime.onnx_execution_provider, "openvino": runtime.openvino_device}
    from edgekit.formats import all_formats

    kind = "cpu" if device.startswith(AGENT_SCHEMES) else device.partition(":")[2].lower() or "cpu"
    if kind not in LOCAL_KINDS:
        raise ProfilingError(f"unknown local device '{kind}'", "use local:cpu, local:gpu or local:npu, or --target PROFILE")
    chosen: dict[str, str | None] = {}
    for fmt in all_formats():
        accelerator = fmt.runners[0].accelerator(kind)
        chosen[fmt.name] = accelerator.name if accelerator is not None else kind
    return chosen


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
        for entry in manifest_entries(folder):
            if entry.get("precision") == "fp32":
                return ref_from_entry(folder, entry)
    return None
