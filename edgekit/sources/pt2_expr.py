"""A strict grammar for the symbolic shape expressions of a torch.export ``.pt2`` graph.

torch writes each expression with ``sympy.srepr`` (``Mul(Integer(2), Symbol('s0', positive=True,
integer=True))``) and reads it back with ``sympy.sympify``, which *evaluates* the string as Python.
:func:`check_expression` parses the string with :mod:`ast` and accepts only what srepr of a shape
expression can produce: calls of a fixed set of sympy / ``torch.utils._sympy`` function names,
integer and boolean literals, symbol names, ``Symbol('name', <assumption>=True|False)`` and the
arithmetic operators ``+ - * // %``. Anything else (attribute access, subscripts, lambdas, strings
outside ``Symbol``, unknown names such as ``__import__``) is refused before sympy sees the string.
Sizes are bounded too: the string length, the nesting depth, each integer's magnitude and powers
(a small literal exponent, never nested), so a crafted expression cannot make sympy compute for ever.
"""
from __future__ import annotations

import ast
import re

MAX_LENGTH = 4096
MAX_DEPTH = 48
MAX_INT = 2**63
MAX_EXPONENT = 8

# sympy classes and torch.utils._sympy.functions that srepr of a torch shape expression can name
FUNCTIONS = frozenset({
    "Integer", "Rational", "Add", "Mul", "Pow", "Min", "Max", "Abs", "Mod", "Eq", "Ne", "Lt", "Le", "Gt", "Ge",
    "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan",
    "And", "Or", "Not", "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt",
    "FloorToInt", "CeilDiv", "PowByNatural", "IntTrueDiv", "TruncToInt", "RoundToInt", "Identity",
})
_POWERS = frozenset({"Pow", "PowByNatural"})
CONSTANTS = frozenset({"true", "false", "oo", "zoo"})
ASSUMPTIONS = frozenset({
    "positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite", "nonzero", "zero",
    "even", "odd", "commutative", "extended_real", "rational",
})
_SYMBOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
# a bare name must look like torch's own symbols (s0, u3, zuf1): never a Python builtin such as ``exec``
_BARE_SYMBOL = re.compile(r"[a-z]{1,4}[0-9]{1,9}\Z")
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)


class ExpressionError(ValueError):
    """A shape expression outside the grammar; the message says what was found."""


def check_expression(text: str) -> None:
    """Raise :class:`ExpressionError` unless ``text`` is a shape expression of the grammar above."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        raise ExpressionError(f"a shape expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExpressionError(f"a shape expression that does not parse: {text[:80]!r}") from None
    _check(tree.body, 0, in_power=False)


def _check(node: ast.AST, depth: int, *, in_power: bool) -> None:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"a shape expression nested deeper than {MAX_DEPTH}")
    if isinstance(node, ast.Constant):
        _check_literal(node.value)
    elif isinstance(node, ast.Name):
        if node.id not in CONSTANTS and not _BARE_SYMBOL.match(node.id):
            raise ExpressionError(f"the name {node.id!r} in a shape expression")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check(node.operand, depth + 1, in_power=in_power)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
        _check(node.left, depth + 1, in_power=in_power)
        _check(node.right, depth + 1, in_power=in_power)
    elif isinstance(node, ast.Call):
        _check_call(node, depth, in_power=in_power)
    else:
        raise ExpressionError(f"{type(node).__name__} syntax in a shape expression")


def _check_literal(value: object) -> None:
    if isinstance(value, bool):
        return
    if not isinstance(value, int):
        raise ExpressionError(f"the literal {value!r:.40} in a shape expression")
    if abs(value) > MAX_INT:
        raise ExpressionError("an integer beyond 2**63 in a shape expression")


def _check_call(node: ast.Call, depth: int, *, in_power: bool) -> None:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name == "Symbol":
        _check_symbol(node)
        return
    if name not in FUNCTIONS:
        found = name or type(node.func).__name__
        raise ExpressionError(f"a call of {found!r} in a shape expression")
    if node.keywords:
        raise ExpressionError(f"keyword arguments to {name} in a shape expression")
    if name in _POWERS:
        if in_power:
            raise ExpressionError("a power nested inside a power in a shape expression")
        if len(node.args) != 2 or not _small_exponent(node.args[1]):
            raise ExpressionError(f"a power whose exponent is not a literal integer up to {MAX_EXPONENT}")
    for arg in node.args:
        _check(arg, depth + 1, in_power=in_power or name in _POWERS)


def _small_exponent(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Integer":
        node = node.args[0] if len(node.args) == 1 and not node.keywords else node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value <= MAX_EXPONENT


def _check_symbol(node: ast.Call) -> None:
    if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
        raise ExpressionError("a Symbol(...) without a single name in a shape expression")
    name = node.args[0].value
    if not _SYMBOL_NAME.match(name):
        raise ExpressionError(f"the symbol name {name!r:.40} in a shape expression")
    for keyword in node.keywords:
        if keyword.arg not in ASSUMPTIONS or not isinstance(keyword.value, ast.Constant) \
                or not isinstance(keyword.value.value, bool):
            raise ExpressionError(f"the Symbol assumption {keyword.arg!r} in a shape expression")
