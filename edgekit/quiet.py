"""Keep third-party progress prints and log chatter out of edgekit's own output."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(logger: str = "", level: int = logging.ERROR) -> Iterator[None]:
    """Swallow stdout and raise ``logger`` (the root logger by default) to ``level`` for the duration."""
    log = logging.getLogger(logger or None)
    previous = log.level
    log.setLevel(level)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        log.setLevel(previous)


#: environment that keeps TensorFlow/absl/glog chatter below errors; set before the frameworks import
FRAMEWORK_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3", "ABSL_MIN_LOG_LEVEL": "3"}

# native lines the frameworks print on import or first use, whatever the log level says
NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|cudart_stub|cuInit|"
    r"cpu_feature_guard|To enable the following instructions|rebuild TensorFlow with the appropriate compiler|"
    r"Created TensorFlow Lite XNNPACK delegate|^[IWE]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\]"
)


def quiet_framework_env(verbose: bool = False) -> dict[str, str]:
    """Set :data:`FRAMEWORK_ENV` in this process (unless ``verbose`` or already set); returns what it set."""
    if verbose:
        return {}
    missing = {key: value for key, value in FRAMEWORK_ENV.items() if key not in os.environ}
    os.environ.update(missing)
    return missing


@contextlib.contextmanager
def native_stderr(verbose: bool = False) -> Iterator[None]:
    """Hold back the frameworks' native start-up lines (:data:`NOISE`) written to file descriptor 2.

    Python's own ``sys.stderr`` keeps writing to the terminal; what native code writes to fd 2 is
    captured, and every captured line that is not noise is written out when the block ends.
    """
    if verbose:
        yield
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    capture = tempfile.TemporaryFile()
    os.dup2(capture.fileno(), 2)
    python_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(terminal), "wb", buffering=0), write_through=True)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)
        capture.seek(0)
        kept = [line for line in capture.read().decode(errors="replace").splitlines() if line and not NOISE.search(line)]
        capture.close()
        if kept:
            sys.stderr.write("\n".join(kept) + "\n")
