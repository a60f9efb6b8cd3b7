"""Safe .pt2 loading: ordinary torch.export archives load as data; crafted ones are refused before anything runs.

Each crafted archive is first proven live: ``torch.export.load`` (what ``allow_unsafe=True`` uses) runs its
payload and creates the marker file. edgekit's default loader must refuse it and leave no marker.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgekit.errors import UnsafeModelError  # noqa: E402
from edgekit.sources import load_source  # noqa: E402
from edgekit.sources.pt2_expr import ExpressionError, check_expression  # noqa: E402


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4, 3)
        self.register_buffer("offset", torch.linspace(-1, 1, 3))

    def forward(self, image):
        return self.fc(torch.relu(self.conv(image)).mean((2, 3))) + self.offset + torch.tensor([0.5, 0.0, -0.5])


class WritesMarker:
    """Unpickling this creates ``path``: the side effect that proves code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    module = SmallCNN().eval()
    batch = torch.export.Dim("batch", min=1, max=32)
    program = torch.export.export(module, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: batch},))
    path = tmp_path_factory.mktemp("pt2") / "cnn.pt2"
    torch.export.save(program, str(path))
    return module, path


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _edit_json(members: dict[str, bytes], suffix: str, edit) -> None:
    name = next(n for n in members if n.endswith(suffix))
    data = json.loads(members[name])
    edit(data)
    members[name] = json.dumps(data).encode()


def _refused_and_inert(crafted: Path, marker: Path, found: str) -> None:
    with pytest.raises(UnsafeModelError) as info:
        load_source(crafted)
    assert found in info.value.message
    assert "--allow-unsafe" in info.value.hint
    assert not marker.exists()


def _proven_live(crafted: Path, marker: Path, *, call_module: bool = False) -> None:
    """torch.export.load of the crafted archive runs its payload (the file is a real attack)."""
    try:
        program = torch.export.load(str(crafted))
        if call_module:
            program.module()(torch.zeros(1, 1, 8, 8))
    except Exception:  # the payload returns a file object where torch wants a tensor: it ran anyway
        pass
    assert marker.exists()
    marker.unlink()


def test_ordinary_pt2_loads_by_default_with_its_dynamic_batch(saved):
    module, path = saved
    source = load_source(path)
    assert source.spec.kind == "pt2"
    assert source.spec.inputs[0].name == "image" and source.spec.inputs[0].shape == (None, 1, 8, 8)
    assert source.spec.outputs[0].shape == (None, 3)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(source.predict({"image": x})["output"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["weights", "constants"])
def test_pickle_in_a_payload_member_is_refused(saved, tmp_path, kind):
    marker = tmp_path / "pwned"
    members = _members(saved[1])
    config = f"data/{kind}/model_{kind}_config.json"
    entry = {}

    def use_pickle(data):
        fqn, meta = next(iter(data["config"].items()))
        meta["use_pickle"] = True
        entry.update(name=meta["path_name"], fqn=fqn)

    _edit_json(members, config, use_pickle)
    import io

    buffer = io.BytesIO()
    torch.save(WritesMarker(marker), buffer)
    member = next(n for n in members if n.endswith(f"data/{kind}/{entry['name']}"))
    members[member] = buffer.getvalue()
    crafted = _write(tmp_path / "pickled.pt2", members)
    _proven_live(crafted, marker)
    _refused_and_inert(crafted, marker, "a pickle of more than tensors")


def test_opaque_object_constant_is_refused(saved, tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    members = _members(saved[1])
    root = next(iter(members)).split("/")[0]

    def add_opaque(data):
        data["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                                  "tensor_meta": None}

    _edit_json(members, "model_constants_config.json", add_opaque)
    members[f"{root}/data/constants/opaque_obj_0"] = pickle.dumps(WritesMarker(marker))
    crafted = _write(tmp_path / "opaque.pt2", members)
    _proven_live(crafted, marker)
    _refused_and_inert(crafted, marker, "constant evil is a pickled opaque object")


def _first_expression(data):
    """The first SymExpr (a dict with ``expr_str``) in the program JSON."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("expr_str"), str):
                return item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    raise AssertionError("the program has no symbolic shape")


def test_import_in_a_shape_expression_is_refused(saved, tmp_path):
    marker = tmp_path / "pwned"
    members = _members(saved[1])

    def inject(data):
        expr = _first_expression(data)
        expr["expr_str"] = f"(__import__('builtins').open('{marker}', 'w').close() or {expr['expr_str']})"

    _edit_json(members, "models/model.json", inject)
    crafted = _write(tmp_path / "expr.pt2", members)
    _proven_live(crafted, marker)
    _refused_and_inert(crafted, marker, "shape expression")


def test_custom_class_argument_is_refused(saved, tmp_path):
    marker = tmp_path / "pwned"
    members = _members(saved[1])

    def add_custom(data):
        node = data["graph_module"]["graph"]["nodes"][0]
        node["inputs"].append({"name": "obj", "arg": {"as_custom_obj": {"name": "c0", "class_fqn": "__torch__.Evil"}},
                               "kind": 1})

    _edit_json(members, "models/model.json", add_custom)
    _refused_and_inert(_write(tmp_path / "custom.pt2", members), marker, "a custom-class object")


def test_operator_outside_torch_ops_is_refused(saved, tmp_path):
    members = _members(saved[1])

    def call_system(data):
        data["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    _edit_json(members, "models/model.json", call_system)
    _refused_and_inert(_write(tmp_path / "system.pt2", members), tmp_path / "none", "'torch.os.system'")


def test_guards_code_is_never_run(saved, tmp_path):
    marker = tmp_path / "pwned"
    members = _members(saved[1])

    def add_guard(data):
        data["guards_code"] = [f"__import__('builtins').open('{marker}', 'w').close() is None"]

    _edit_json(members, "models/model.json", add_guard)
    crafted = _write(tmp_path / "guards.pt2", members)
    _proven_live(crafted, marker, call_module=True)
    source = load_source(crafted)
    source.predict({"image": np.zeros((1, 1, 8, 8), np.float32)})
    assert not marker.exists()


def test_member_outside_the_layout_is_refused(saved, tmp_path):
    members = _members(saved[1])
    root = next(iter(members)).split("/")[0]
    members[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF"
    with pytest.raises(UnsafeModelError, match="aotinductor"):
        load_source(_write(tmp_path / "aoti.pt2", members))


@pytest.mark.parametrize("text", [
    "Symbol('s0', positive=True, integer=True)",
    "Mul(Integer(2), Symbol('s0', integer=True))",
    "FloorDiv(Add(Symbol('s1'), Integer(-1)), Integer(2))",
    "Max(Integer(1), Min(s0, s1)) + s2 // 2 - s3 % 4",
    "Pow(Symbol('s0'), Integer(2))",
])
def test_grammar_accepts_shape_expressions(text):
    check_expression(text)


@pytest.mark.parametrize(("text", "found"), [
    ("__import__('os')", "'__import__'"),
    ("Symbol('s0').__class__", "Attribute"),
    ("exec", "'exec'"),
    ("Integer(1.5)", "1.5"),
    ("Pow(Integer(10), Integer(100000000))", "exponent"),
    ("Pow(Pow(s0, 8), 8)", "nested inside a power"),
    ("Symbol('s0', evaluate=__import__('os'))", "assumption"),
    ("[s0 for s0 in ()]", "ListComp"),
    ("Integer(" + "9" * 30 + ")", "2**63"),
])
def test_grammar_refuses_what_is_not_a_shape_expression(text, found):
    with pytest.raises(ExpressionError) as info:
        check_expression(text)
    assert found in str(info.value)
