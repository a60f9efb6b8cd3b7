"""NNCF's PyTorch fake-quantize kernels without a run-time C++ build.

NNCF 3.4 compiles a C++ torch extension (``quantized_functions_cpu``) into ``TORCH_EXTENSIONS_DIR`` on its
first fake-quantize call and gives up after ``NNCF_EXTENSION_LOAD_TIMEOUT`` (60 s): a fresh, busy 2-core
machine misses that, an interrupted build leaves a ``lock`` file every later run waits on, and a machine
without a compiler cannot build at all. NNCF ships the same functions written in PyTorch
(``nncf.torch.quantization.reference``, its own fallback when the build fails), but wraps them in
``torch.compile``, which generates and compiles C++ again. :func:`use_pure_pytorch_kernels` makes NNCF
use the reference functions, run eagerly, from the start: nothing compiles at run time.
"""
from __future__ import annotations

PURE_PYTORCH_NOTE = "NNCF fake-quantize kernels: pure PyTorch (no C++ extension is built at run time)"


def use_pure_pytorch_kernels() -> bool:
    """Point NNCF's CPU quantize functions at its PyTorch reference; True when they were not loaded before."""
    from nncf.torch.quantization import extensions
    from nncf.torch.quantization.reference import torch_executor

    class EagerReferenceFunctions:
        Quantize_forward = staticmethod(torch_executor.forward)
        Quantize_backward = staticmethod(torch_executor.backward)

    namespace = extensions.QuantizedFunctionsCPU
    if namespace._loaded_namespace is not None:  # noqa: SLF001 - NNCF offers no public switch for this
        return False
    namespace._loaded_namespace = EagerReferenceFunctions  # noqa: SLF001
    return True
