"""Unrolled recurrent layers (``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``) kept in one XNNPACK partition.

``torch.export`` unrolls a recurrent layer over its static sequence. In the edge dialect, every time step of
every layer takes its input with ``squeeze_copy`` (the sequence is unbound) and splits its gate
pre-activations with ``split_with_sizes_copy``; XNNPACK's partitioner takes neither, so each one cuts the
partition and a 3-layer LSTM over 160 steps becomes hundreds of XNNPACK delegates. Each delegate's
preprocessing runs XNNPACK's passes over a copy of the program, so lowering time grows with the number
of delegates (a 3-layer LSTM(40, 64): 37 delegates at 10 steps, 67 at 20, 21 s and 41 s in
bench/results/executorch_recurrent.json; resemblyzer's 160 steps did not finish in 38 minutes). This pass
rewrites those two ops, only inside recurrent modules, as the ops XNNPACK takes: a ``slice_copy`` per chunk
and a ``view_copy`` to the same shape (the same values), so the unrolled layer is one partition (160 steps:
342 s, 4 delegates).
"""
from __future__ import annotations

import operator
from typing import Any

_RECURRENT = {"torch.nn.modules.rnn.LSTM", "torch.nn.modules.rnn.GRU", "torch.nn.modules.rnn.RNN"}


def in_recurrent_layer(node: Any) -> bool:
    """Whether ``node`` was traced inside a ``torch.nn`` LSTM, GRU or RNN module."""
    stack = node.meta.get("nn_module_stack") or {}
    return any(str(kind) in _RECURRENT for _, kind in stack.values())


class RecurrentSliceViewPass:
    """Edge-dialect pass: ``split_with_sizes_copy`` -> ``slice_copy`` per chunk and ``squeeze_copy`` ->
    ``view_copy`` for the nodes of recurrent layers; ``rewritten`` counts the ops replaced."""

    def __init__(self) -> None:
        self.rewritten = 0

    def __call__(self, graph_module: Any) -> Any:
        from executorch.exir.dialects._ops import ops as exir_ops
        from executorch.exir.pass_base import PassResult

        aten = exir_ops.edge.aten
        graph = graph_module.graph
        before = self.rewritten
        for node in list(graph.nodes):
            if node.op != "call_function" or not in_recurrent_layer(node):
                continue
            if node.target == aten.squeeze_copy.dims:
                self._replace(graph, node, aten.view_copy.default, (node.args[0], list(node.meta["val"].shape)))
            elif node.target == aten.split_with_sizes_copy.default and self._split_as_slices(graph, node, aten):
                graph.erase_node(node)
            else:
                continue
            self.rewritten += 1
        if self.rewritten != before:
            graph.lint()
            graph_module.recompile()
        return PassResult(graph_module, self.rewritten != before)

    @staticmethod
    def _replace(graph: Any, node: Any, target: Any, args: tuple[Any, ...]) -> None:
        with graph.inserting_before(node):
            new = graph.call_function(target, args)
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        graph.erase_node(node)

    def _split_as_slices(self, graph: Any, node: Any, aten: Any) -> bool:
        """Each ``getitem`` of the split replaced by its slice; False (nothing changed) for any other use."""
        if not all(user.target is operator.getitem for user in node.users):
            return False
        source, sizes = node.args[0], list(node.args[1])
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
        dim %= source.meta["val"].dim()
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        for user in list(node.users):
            index = user.args[1]
            self._replace(graph, user, aten.slice_copy.Tensor, (source, dim, starts[index], starts[index] + sizes[index]))
        return True
