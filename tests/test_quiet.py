"""Third-party log noise: held back by default (CLI, demo, GUI job), shown with --verbose."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

NOISE = ("cuInit", "oneDNN", "absl", "cudart_stub", "cpu_feature_guard")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env={**clean, **env})


def test_native_lines_are_filtered_and_the_rest_kept():
    code = """
        import os, sys
        from edgekit.quiet import native_stderr
        with native_stderr():
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
            os.write(2, b"E0000 00:00:1796156306.400403    1288 cuda_platform.cc:52] failed call to cuInit: UNKNOWN\\n")
            os.write(2, b"a real native error line\\n")
            print("python stderr line", file=sys.stderr)
        print("done")
    """
    result = _run(code)
    assert result.stdout == "done\n"
    assert result.stderr.splitlines() == ["python stderr line", "a real native error line"]


@pytest.mark.slow  # imports TensorFlow and runs a LiteRT interpreter in the test's own process: about 15 s
def test_tensorflow_in_process_prints_only_our_lines():
    code = """
        from edgekit.quiet import native_stderr, quiet_framework_env
        quiet_framework_env()
        with native_stderr():
            import numpy as np
            import tensorflow as tf
            model = tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(2)])
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            from ai_edge_litert.interpreter import Interpreter
            interpreter = Interpreter(model_content=converter.convert())
            interpreter.allocate_tensors()
        print("converted")
    """
    result = _run(code)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert not [line for line in text.splitlines() if any(word in line for word in NOISE)], text
    assert "converted" in result.stdout
    loud = _run(code.replace("quiet_framework_env()", "pass").replace("native_stderr()", "native_stderr(True)"))
    assert any(word in loud.stderr for word in NOISE)  # the same work without edgekit's filter is noisy
