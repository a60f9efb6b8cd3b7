"""Load a torch.export ``.pt2`` archive as data: no pickle of objects, no Python evaluated.

``torch.export.load`` unpickles weights and constants saved with ``use_pickle`` (``weights_only=False``),
custom-class and opaque constants (``pickle.loads`` / the TorchScript unpickler), falls back to
``weights_only=False`` for the sample inputs, evaluates every shape expression with ``sympy.sympify``
and turns ``guards_code`` into Python it runs. :func:`load_pt2` reads the archive itself instead:

1. the archive is checked (:func:`edgekit.sources.archive.check_archive`: names, sizes, CRCs), and
   every member must be one a plain ``torch.export.save`` writes (no AOTInductor ``.so``, no extra code);
2. the program JSON is walked strictly against torch's schema (:mod:`edgekit.sources.pt2_schema`),
   which also parses every shape expression with edgekit's own grammar (:mod:`edgekit.sources.pt2_expr`);
3. raw tensors are built from their bytes after their declared extent is checked against the bytes
   present; pickled tensors and the sample inputs go through ``torch.load(weights_only=True)`` only;
4. only then are the already-parsed parts handed to torch's ``ExportedProgramDeserializer``.

Anything else is an :class:`UnsafeModelError` saying what was found, with the ``allow_unsafe`` hint.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from edgekit.errors import ModelFileError, UnsafeModelError, first_line
from edgekit.sources import pt2_schema

UNSAFE_HINT = (
    "if you trust where the file comes from, pass allow_unsafe=True (CLI: --allow-unsafe) to load it with "
    "torch.export.load; otherwise export the model again without custom classes or opaque objects"
)
_PLAIN = frozenset({"archive_format", "archive_version", "byteorder", "version", ".data/version",
                    ".data/serialization_id"})
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}"
_MEMBERS = re.compile(
    rf"(models/{_NAME}\.json|data/weights/{_NAME}|data/constants/{_NAME}|data/sample_inputs/{_NAME}\.pt"
    rf"|extra/{_NAME})\Z"
)


class _Archive:
    """The members of one ``.pt2`` zip, by their name below the archive's root folder."""

    def __init__(self, path: Path, archive: zipfile.ZipFile) -> None:
        self.path = path
        self.zip = archive
        roots = {name.split("/", 1)[0] for name in archive.namelist()}
        if len(roots) != 1:
            raise _unsafe(path, [f"{len(roots)} root folders instead of one"])
        self.root = roots.pop()
        self.members = {name.split("/", 1)[1]: name for name in archive.namelist() if "/" in name}

    def read(self, member: str) -> bytes:
        if member not in self.members:
            raise ModelFileError(f"{self.path.name} has no member {member}", "export the model again")
        return self.zip.read(self.members[member])

    def json(self, member: str) -> Any:
        try:
            return json.loads(self.read(member), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ModelFileError(f"{self.path.name}: {member} is not valid JSON: {first_line(exc)}",
                                 "export the model again") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a JSON object repeats a key")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _unsafe(path: Path, problems: list[str]) -> UnsafeModelError:
    listed = "; ".join(problems)
    return UnsafeModelError(
        f"{path.name} is a torch.export archive that holds more than data, so edgekit does not load it "
        f"by default: {listed}",
        UNSAFE_HINT,
    )


def load_pt2(path: Path) -> Any:
    """The ``torch.export.ExportedProgram`` in ``path``, loaded without running anything it carries."""
    from edgekit.sources.archive import check_archive

    check_archive(path)
    with zipfile.ZipFile(path) as archive:
        parts = _Archive(path, archive)
        model = _check_layout(parts)
        program = parts.json(f"models/{model}.json")
        problems = pt2_schema.check_program(program) if isinstance(program, dict) else ["a program that is not an object"]
        if problems:
            raise _unsafe(path, problems)
        state_dict = _payload(parts, model, "weights")
        constants = _payload(parts, model, "constants")
        examples = _sample_inputs(parts, model)
    return _deserialize(path, pt2_schema.drop_guards(program), state_dict, constants, examples)


def _check_layout(parts: _Archive) -> str:
    """The one model name in the archive; refuses members a plain ``torch.export.save`` never writes."""
    if parts.read("archive_format").strip() != b"pt2":
        raise ModelFileError(f"{parts.path.name} does not declare the pt2 archive format", "export the model again")
    odd = [name for name in parts.members if name not in _PLAIN and not _MEMBERS.match(name)]
    odd += [name for name in parts.zip.namelist() if "/" not in name]
    if odd:
        shown = ", ".join(sorted(odd)[:4])
        raise _unsafe(parts.path, [f"member(s) a torch.export.save archive does not hold: {shown}"])
    models = [name[len("models/"):-len(".json")] for name in parts.members if name.startswith("models/")]
    if len(models) != 1:
        raise ModelFileError(
            f"{parts.path.name} holds {len(models)} exported programs; edgekit converts archives with one",
            "save one program per .pt2 file with torch.export.save",
        )
    return models[0]


def _payload(parts: _Archive, model: str, kind: str) -> dict[str, Any]:
    """Weights or constants: fqn -> tensor, built from raw bytes or ``torch.load(weights_only=True)``."""
    legacy = f"{kind}/{model}.pt"
    if legacy in parts.members:
        return _torch_load(parts, legacy, f"the legacy {kind} file")
    config = parts.json(f"data/{kind}/model_{kind}_config.json")
    problems = pt2_schema.check_payload_config(config)
    if problems:
        raise _unsafe(parts.path, problems)
    tensors: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for fqn, meta in config["config"].items():
        name = meta["path_name"]
        if kind == "constants" and not name.startswith("tensor_"):
            what = "a custom-class object" if name.startswith("custom_obj") else "a pickled opaque object"
            raise _unsafe(parts.path, [f"constant {fqn} is {what} ({name})"])
        member = f"data/{kind}/{name}"
        if meta["use_pickle"]:
            tensors[fqn] = _torch_load(parts, member, f"{kind[:-1]} {fqn}")
            continue
        if name not in files:
            files[name] = _flat_tensor(parts, member, meta["tensor_meta"])
        tensors[fqn] = _strided(parts.path, fqn, files[name], meta)
    return tensors


def _torch_load(parts: _Archive, member: str, what: str) -> Any:
    import torch

    try:
        value = torch.load(io.BytesIO(parts.read(member)), weights_only=True, map_location="cpu")
    except Exception as exc:  # weights_only refuses any global it does not know
        raise _unsafe(parts.path, [f"{what} is a pickle of more than tensors: {first_line(exc)[:160]}"]) from None
    return value


def _flat_tensor(parts: _Archive, member: str, meta: dict[str, Any]) -> Any:
    """A 1-D CPU tensor over the bytes of ``member``, of the dtype ``meta`` declares."""
    import torch
    from torch._export.serde import schema
    from torch._export.serde.serialize import deserialize_scalar_type

    dtype = deserialize_scalar_type(schema.ScalarType(meta["dtype"]))
    data = parts.read(member)
    size = torch.empty(0, dtype=dtype).element_size()
    if len(data) % size:
        raise ModelFileError(f"{parts.path.name}: {member} holds {len(data)} bytes, not a whole number of "
                             f"{dtype} elements", "export the model again")
    if not data:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=dtype)


def _strided(path: Path, fqn: str, flat: Any, meta: dict[str, Any]) -> Any:
    import torch

    tensor_meta = meta["tensor_meta"]
    if tensor_meta is None:
        raise ModelFileError(f"{path.name}: tensor {fqn} has no shape record", "export the model again")
    sizes = [_int(path, fqn, s) for s in tensor_meta["sizes"]]
    strides = [_int(path, fqn, s) for s in tensor_meta["strides"]]
    offset = _int(path, fqn, tensor_meta["storage_offset"])
    if len(sizes) != len(strides) or min([offset, *sizes, *strides], default=0) < 0:
        raise ModelFileError(f"{path.name}: tensor {fqn} declares an invalid shape", "export the model again")
    extent = 0 if 0 in sizes else offset + 1 + sum((n - 1) * s for n, s in zip(sizes, strides))
    if flat.numel() == 0 and extent:  # torch writes an all-zero tensor as an empty member
        flat = torch.zeros(extent, dtype=flat.dtype)
    if extent > flat.numel():
        raise ModelFileError(
            f"{path.name}: tensor {fqn} declares {extent} elements but its member holds {flat.numel()}",
            "the archive is truncated or crafted; export the model again",
        )
    tensor = torch.as_strided(flat, sizes, strides, offset)
    if meta["is_param"]:
        return torch.nn.Parameter(tensor, requires_grad=bool(tensor_meta["requires_grad"]))
    return tensor


def _int(path: Path, fqn: str, value: dict[str, Any]) -> int:
    number = value.get("as_int") if isinstance(value, dict) else None
    if type(number) is not int or abs(number) > 2**62:
        raise ModelFileError(f"{path.name}: tensor {fqn} has a symbolic or invalid size", "export the model again")
    return number


def _sample_inputs(parts: _Archive, model: str) -> Any:
    member = f"data/sample_inputs/{model}.pt"
    if member not in parts.members:
        return None
    value = _torch_load(parts, member, "the sample inputs")
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple) and isinstance(value[1], dict)):
        raise ModelFileError(f"{parts.path.name}: the sample inputs are not (args, kwargs)", "export the model again")
    return value


def _deserialize(path: Path, program: dict[str, Any], state_dict: dict[str, Any], constants: dict[str, Any],
                 examples: Any) -> Any:
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass

    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, program)
        return ExportedProgramDeserializer().deserialize(serialized, state_dict, constants, examples)
    except Exception as exc:  # torch raises SerializeError, KeyError, AssertionError on odd graphs
        raise ModelFileError(
            f"cannot rebuild the torch.export program in {path.name}: {type(exc).__name__}: {first_line(exc)}",
            "export it again with the installed torch version",
        ) from exc
