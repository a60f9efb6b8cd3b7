"""Training-time optimization before export: pruning, quantization-aware training and distillation.

``steps`` holds the options (``edgekit.prune``/``qat``/``distill``), ``recipe`` reads them from a file,
``labelled`` checks train/val data, ``run`` runs the chain on a framework backend (``keras``, ``torch``).
"""
