"""What every artifact format package declares: one ``ArtifactFormat`` object named ``FORMAT``.

A format package (``edgekit/formats/<name>/``) owns everything that knows one artifact format. Its
``__init__.py`` defines ``FORMAT = ArtifactFormat(...)`` and imports nothing heavy: the members that need a
framework name modules by dotted path (``"edgekit.formats.onnx.ops:list_ops"``) and are imported on use.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def resolve(dotted: str) -> Any:
    """The object at ``"package.module:attribute"``, imported on use."""
    module, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Requirement:
    """A package a runner or route needs: the import name checked, the distribution and the pip line."""

    module: str  # import name checked with importlib.util.find_spec, e.g. "onnxruntime"
    distribution: str  # e.g. "onnxruntime"
    install: str  # the exact line that installs it, e.g. "pip install 'edgekit[convert]'"


@dataclass(frozen=True)
class Accelerator:
    """One device a runner can target (a TFLite delegate, an ORT execution provider, an OpenVINO device)."""

    name: str  # what users pass as device=, e.g. "CPU", "GPU", "NPU", "xnnpack", "CUDAExecutionProvider"
    description: str
    install: str = ""  # how to get it where it is missing (driver, package, delegate library)
    kind: str = ""  # "cpu", "gpu" or "npu": what edgekit.profile's local:cpu / local:gpu / local:npu picks


@dataclass(frozen=True)
class RunnerSpec:
    """One runtime that runs this format: ``load`` is ``"module:function"`` returning a ``Runner``.

    ``load(path, *, device=None, threads=None, profile_ops=False, **options) -> Runner``.
    ``probe`` (optional, ``"module:function"``) returns the accelerator names present on this host.
    """

    runtime: str  # e.g. "litert", "tflite-runtime", "onnxruntime", "openvino"
    load: str
    requires: tuple[Requirement, ...] = ()
    accelerators: tuple[Accelerator, ...] = ()
    probe: str | None = None
    fallback: bool = False  # picked by default when the runners declared before it are not installed
    description: str = ""

    def missing(self) -> list[Requirement]:
        """The requirements of this runner that are not installed here."""
        from edgekit.dependencies import is_installed

        return [r for r in self.requires if not is_installed(r.module)]

    def require(self, fmt: str) -> None:
        """Raise ``MissingDependencyError`` (with the install line) unless every requirement is installed."""
        absent = self.missing()
        if absent:
            from edgekit.errors import MissingDependencyError

            raise MissingDependencyError(
                f"running {fmt} artifacts with {self.runtime} needs the Python module '{absent[0].module}'"
                f" (package {absent[0].distribution}), which is not installed", absent[0].install)

    def accelerator(self, kind: str) -> Accelerator | None:
        """The first accelerator of ``kind`` ("cpu", "gpu", "npu"), or None."""
        return next((a for a in self.accelerators if a.kind == kind), None)

    def open(self, path: Path, **options: Any):
        return resolve(self.load)(Path(path), **options)


#: the runner of every format on a device running ``edgekit agent`` (``open_runner(..., agent=URL)``)
AGENT_RUNNER = RunnerSpec("agent", "edgekit.formats.agent:AgentRunner",
                          description="the artifact run on a device running edgekit agent, reached over the network")


@dataclass(frozen=True)
class ArtifactFormat:
    """Everything edgekit knows about one artifact format.

    ``sniff(head: bytes, path: Path) -> bool`` tells from the file's first bytes (and, for folders or
    text formats, a bounded look at the file) whether ``path`` is this format; it never trusts the suffix.
    Dotted members are resolved on use:
      - ``companions``: ``(path) -> list[Path]`` files that belong to the artifact (external data, .bin)
      - ``list_ops``: ``(path) -> list[OpInfo]`` ops in execution order, read without running the model
      - ``read_inputs``: ``(path) -> tuple[TensorSpec, ...]`` the declared inputs, read without a runtime
      - ``weight_counts``: ``(path) -> Counter`` weight parameters per stored dtype name
      - ``float_weights``: ``(path) -> Counter`` float weight parameters per op type (where int8 did not reach)
      - ``stored_precision``: ``(path) -> str`` fp32 / fp16 / int8 as stored in the file
      - ``trace``: ``(path, feeds) -> ModelTrace`` intermediate tensors for ``edgekit debug`` (None: not available)
      - ``write_contract``: ``(path, text) -> list[Path]`` the deployment contract stored in the format's own
        carrier (``edgekit.contract``), the files written; ``read_contract``: ``(path) -> str | None`` read back
    """

    name: str  # "tflite", "onnx", "openvino", ...
    title: str  # "TFLite / LiteRT"
    suffixes: tuple[str, ...]  # the usual file names, for save dialogs and default stems only
    sniff: Callable[[bytes, Path], bool]
    runners: tuple[RunnerSpec, ...]  # the first one is the default runtime
    companions: str | None = None
    list_ops: str | None = None
    read_inputs: str | None = None
    weight_counts: str | None = None
    float_weights: str | None = None
    stored_precision: str | None = None
    trace: str | None = None
    write_contract: str | None = None
    read_contract: str | None = None
    requires: tuple[Requirement, ...] = ()  # what reading the file needs (e.g. onnx for listing ops)
    notes: tuple[str, ...] = field(default_factory=tuple)
    source_framework: str | None = None  # a file of this format is also a model source (ONNX), else refused

    def member(self, name: str) -> Callable[..., Any]:
        """The dotted member ``name`` (``list_ops``, ``trace``, ...) imported, or an error when it has none."""
        dotted = getattr(self, name)
        if dotted is None:
            from edgekit.errors import EdgekitError

            raise EdgekitError(f"edgekit cannot do '{name}' for {self.title} artifacts: not available for {self.name}",
                               " ".join(self.notes) or "use another format")
        for requirement in self.requires:
            from edgekit.dependencies import require

            require((requirement.module,), requirement.install, f"reading {self.title} artifacts")
        if name == "trace":  # the trace runs the artifact in its runtime
            self.default_runner().require(self.name)
        return resolve(dotted)

    def files(self, path: Path) -> tuple[Path, ...]:
        """The artifact's main file and its companions; an error names a companion that is missing."""
        path = Path(path)
        files = (path, *(resolve(self.companions)(path) if self.companions else ()))
        absent = [f for f in files if not f.is_file()]
        if absent:
            from edgekit.errors import ModelFileError

            raise ModelFileError(f"{absent[0].name} is missing beside {path.name}",
                                 f"a {self.title} artifact is these files together: {', '.join(f.name for f in files)}")
        return files

    def default_runner(self) -> RunnerSpec:
        """The first runner, or the first declared fallback that is installed where the first is not."""
        first = self.runners[0]
        if not first.missing():
            return first
        return next((spec for spec in self.runners[1:] if spec.fallback and not spec.missing()), first)

    def runner(self, runtime: str | None = None) -> RunnerSpec:
        """The runner for ``runtime`` (default: the first declared)."""
        if runtime is None:
            return self.runners[0]
        for spec in self.runners:
            if spec.runtime == runtime:
                return spec
        from edgekit.errors import InvalidOptionError, did_you_mean

        names = [spec.runtime for spec in self.runners]
        raise InvalidOptionError(
            f"the {self.name} format has no runtime '{runtime}'", f"{did_you_mean(runtime, names)}choose from: {', '.join(names)}"
        )
