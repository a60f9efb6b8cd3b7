"""PyTorch QAT on a fresh, busy machine: nothing is compiled at run time.

The QAT run happens in a child process with an empty ``TORCH_EXTENSIONS_DIR`` and NNCF's extension-load
timeout cut to 5 s (a C++ build takes far longer), while a ``yes > /dev/null`` burns a core beside it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("nncf")

CHILD = textwrap.dedent("""
    import numpy as np, torch
    from sklearn.datasets import load_digits
    from edgekit.optimize import torch as backend
    from edgekit.optimize.backend import TrainingSet
    from edgekit.optimize.steps import qat

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    data = TrainingSet(x[:1200], y[:1200], x[1200:], y[1200:], "classification", from_logits=True, num_classes=10)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 64, 10))
    model = backend.fit(backend.prepare(model), data, epochs=3, learning_rate=3e-3, batch_size=32,
                        progress=lambda *a: None)
    quantized = backend.qat(model, qat(epochs=1), data, lambda *a: None)
    with torch.no_grad():
        predicted = quantized(torch.from_numpy(data.x_val)).argmax(1).numpy()
    print("accuracy", float((predicted == data.y_val).mean()))
""")


@pytest.mark.slow  # a QAT run in a child process beside a CPU burner: about 40 s
def test_qat_with_an_empty_extensions_dir_under_load(tmp_path):
    extensions = tmp_path / "torch_extensions"
    extensions.mkdir()
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(extensions), "NNCF_EXTENSION_LOAD_TIMEOUT": "5"}
    burner = subprocess.Popen(["sh", "-c", "exec yes > /dev/null"])
    try:
        result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600, env=env)
    finally:
        burner.kill()
        burner.wait()
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(result.stdout.split("accuracy")[-1])
    assert accuracy >= 0.85
    assert not [p for p in extensions.rglob("*") if p.is_file()]  # nothing was built (nor a lock left behind)
