"""Safe model artifacts: expression trees as JSON, evaluated with numpy. No pickle, no eval.

A node is one of  {"const": 1.5} | {"var": "Mg"} | {"op": NAME, "args": [node, ...]}
with NAME from OPS below. `validate` rejects anything else (unknown keys, ops, arity, variables), so a
model.json received from someone else can be opened safely.
"""

from __future__ import annotations

import ast
import math

import numpy as np

from .errors import AlloyHydraError

OPS = {  # name: (arity, numpy function)
    "add": (2, np.add),
    "sub": (2, np.subtract),
    "mul": (2, np.multiply),
    "div": (2, np.divide),
    "pow": (2, np.power),
    "neg": (1, np.negative),
    "sqrt": (1, np.sqrt),
    "log": (1, np.log),
    "exp": (1, np.exp),
    "square": (1, np.square),
    "abs": (1, np.abs),
    "tanh": (1, np.tanh),
    "sin": (1, np.sin),
    "cos": (1, np.cos),
    "aq": (2, lambda a, b: a / np.sqrt(1.0 + b * b)),  # analytic quotient (operon)
    "min": (2, np.fmin),
    "max": (2, np.fmax),  # operon's fmin / fmax: hinges such as max(Zn - 5, 0)
    "cbrt": (1, np.cbrt),
    "logabs": (1, lambda a: np.log(np.abs(a))),
    "sqrtabs": (1, lambda a: np.sqrt(np.abs(a))),
}
_PY_BIN = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.BitXor: "pow"}


class ModelFileError(AlloyHydraError, ValueError):
    """A model.json that is malformed or holds something other than the allowed expression nodes (a user's
    file: reported without a traceback)."""


def validate(node, variables=None, path="expr") -> None:
    if not isinstance(node, dict):
        raise ModelFileError(f"{path}: a node must be an object, not {type(node).__name__}")
    keys = set(node)
    if keys == {"const"}:
        if (
            not isinstance(node["const"], (int, float))
            or isinstance(node["const"], bool)
            or not math.isfinite(node["const"])
        ):
            raise ModelFileError(f"{path}: const must be a finite number")
    elif keys == {"var"}:
        if not isinstance(node["var"], str) or (variables is not None and node["var"] not in variables):
            raise ModelFileError(f"{path}: unknown variable {node['var']!r}")
    elif keys == {"op", "args"}:
        op = node["op"]
        if op not in OPS:
            raise ModelFileError(f"{path}: operator {op!r} is not allowed (allowed: {sorted(OPS)})")
        if not isinstance(node["args"], list) or len(node["args"]) != OPS[op][0]:
            raise ModelFileError(f"{path}: {op} takes {OPS[op][0]} argument(s)")
        for i, a in enumerate(node["args"]):
            validate(a, variables, f"{path}.{op}[{i}]")
    else:
        raise ModelFileError(f"{path}: unexpected keys {sorted(keys)}")


def evaluate(node, X: dict) -> np.ndarray:
    """Evaluate on columns X (name -> array); invalid operations give nan/inf, never an exception."""
    with np.errstate(all="ignore"):
        return _eval(node, X)


def _eval(node, X):
    if "const" in node:
        return np.float64(node["const"])
    if "var" in node:
        return np.asarray(X[node["var"]], dtype=float)
    return OPS[node["op"]][1](*(_eval(a, X) for a in node["args"]))


def length(node) -> int:
    """Number of nodes (the complexity used throughout)."""
    return 1 + sum(length(a) for a in node.get("args", []))


def variables(node) -> set[str]:
    if "var" in node:
        return {node["var"]}
    return set().union(*(variables(a) for a in node.get("args", []))) if "args" in node else set()


def constants(node) -> list[float]:
    if "const" in node:
        return [node["const"]]
    return [c for a in node.get("args", []) for c in constants(a)]


def with_constants(node, values) -> dict:
    """A copy of the tree with its constants replaced in order (for refitting constants)."""
    it = iter(values)

    def rec(n):
        if "const" in n:
            return {"const": float(next(it))}
        if "var" in n:
            return dict(n)
        return {"op": n["op"], "args": [rec(a) for a in n["args"]]}

    return rec(node)


def parse(text: str, names: dict | None = None) -> dict:
    """A formula string (operon's output: + - * / ^ and sqrt(), log(), ...) -> tree. Parsed with `ast`,
    never evaluated; `names` maps the string's variable names to feature names."""
    tree = ast.parse(text.strip(), mode="eval").body

    def rec(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return {"const": float(n.value)}
        if isinstance(n, ast.Name):
            return {"var": names.get(n.id, n.id) if names else n.id}
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            inner = rec(n.operand)
            return {"const": -inner["const"]} if "const" in inner else {"op": "neg", "args": [inner]}
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.UAdd):
            return rec(n.operand)
        if isinstance(n, ast.BinOp) and type(n.op) in _PY_BIN:
            return {"op": _PY_BIN[type(n.op)], "args": [rec(n.left), rec(n.right)]}
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in OPS and not n.keywords:
            return {"op": n.func.id, "args": [rec(a) for a in n.args]}
        raise ModelFileError(f"cannot read formula part {ast.dump(n)[:80]}")

    out = rec(tree)
    validate(out)
    return out


def simplify(node) -> dict:
    """Fold constant sub-trees and trivial identities (x*1, x+0, c^2 ...) so formulas read well."""
    if "args" not in node:
        return node
    args = [simplify(a) for a in node["args"]]
    if all("const" in a for a in args):
        v = float(evaluate({"op": node["op"], "args": args}, {}))
        if math.isfinite(v):
            return {"const": v}
    op = node["op"]
    if op == "mul":  # hoist constant factors: c1·(c2·x) -> (c1c2)·x, (c1·x)·(c2·y) -> (c1c2)·(x·y)
        k, rest = 1.0, []
        for a in args:
            if "const" in a:
                k *= a["const"]
            elif a.get("op") == "mul" and "const" in a["args"][0]:
                k *= a["args"][0]["const"]
                rest.append(a["args"][1])
            else:
                rest.append(a)
        if len(rest) < 2 or k != 1.0:
            inner = rest[0] if len(rest) == 1 else {"op": "mul", "args": rest}
            if not rest:
                return {"const": k}
            return inner if k == 1.0 else {"op": "mul", "args": [{"const": k}, inner]}
    if op == "sub" and "const" in args[1] and args[1]["const"] < 0:
        return simplify({"op": "add", "args": [args[0], {"const": -args[1]["const"]}]})
    c = [a.get("const") for a in args]
    if op == "mul" and (c[0] == 0 or (len(c) > 1 and c[1] == 0)):
        return {"const": 0.0}
    if op == "mul" and c[0] == 1:
        return args[1]
    if op in ("mul", "div", "pow") and c[1] == 1:
        return args[0]
    if op == "add" and c[0] == 0:
        return args[1]
    if op in ("add", "sub") and c[1] == 0:
        return args[0]
    return {"op": op, "args": args}


_INFIX = {"add": "+", "sub": "-", "mul": "·", "div": "/", "pow": "^"}


def to_string(node, precision: int = 4, units: dict | None = None) -> str:
    """Readable formula; `units` adds [unit] after variable names."""
    if "const" in node:
        return f"{node['const']:.{precision}g}"
    if "var" in node:
        return node["var"] + (f"[{units[node['var']]}]" if units and units.get(node["var"]) else "")
    args = [to_string(a, precision, units) for a in node["args"]]
    if node["op"] in _INFIX:
        return f"({args[0]} {_INFIX[node['op']]} {args[1]})"
    if node["op"] == "neg":
        return f"-({args[0]})"
    return f"{node['op']}({', '.join(args)})"


def weighted_sum(c0: float, weights, bases) -> dict:
    """The tree c0 + w1·b1 + w2·b2 + ... (the form expr.terms and train's linear refit read back)."""
    tree = {"const": float(c0)}
    for w, b in zip(weights, bases):
        tree = {"op": "add", "args": [tree, {"op": "mul", "args": [{"const": float(w)}, b]}]}
    return tree


def bounded(tree: dict, lo: float, hi: float) -> dict:
    """min(max(tree, lo), hi): a formula whose output stays in [lo, hi] (train.clip_margin)."""
    return {"op": "min", "args": [{"op": "max", "args": [tree, {"const": float(lo)}]}, {"const": float(hi)}]}


def unbound(node: dict) -> tuple[dict, tuple[float, float] | None]:
    """(inner tree, (lo, hi)) for a tree built by `bounded`, else (node, None)."""
    if node.get("op") == "min" and "const" in node["args"][1]:
        inner = node["args"][0]
        if inner.get("op") == "max" and "const" in inner["args"][1]:
            return inner["args"][0], (inner["args"][1]["const"], node["args"][1]["const"])
    return node, None


def terms(node) -> list[tuple[int, dict]]:
    """The top-level sum as (sign, term) pairs: a + b - c -> [(1, a), (1, b), (-1, c)]."""
    if node.get("op") in ("add", "sub"):
        left, right = terms(node["args"][0]), terms(node["args"][1])
        return left + ([(-s, t) for s, t in right] if node["op"] == "sub" else right)
    return [(1, node)]


def merge_terms(parts: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """Identical terms of a sum joined (3·x + 2·x -> 5·x, constants summed), terms that cancel dropped; the
    order of first appearance kept. Display only: the model file keeps its tree."""
    import json

    coef, body = {}, {}
    for sign, t in parts:
        if "const" in t:
            c, f = sign * float(t["const"]), None
        elif t.get("op") == "mul" and "const" in t["args"][0]:
            c, f = sign * float(t["args"][0]["const"]), t["args"][1]
        else:
            c, f = float(sign), t
        key = "" if f is None else json.dumps(f, sort_keys=True)
        coef[key] = coef.get(key, 0.0) + c
        body.setdefault(key, f)
    out = []
    for key, c in coef.items():
        if abs(c) <= 1e-12 * max(1.0, *(abs(v) for v in coef.values())):
            continue
        f = body[key]
        t = {"const": abs(c)} if f is None else (f if abs(c) == 1.0 else {"op": "mul", "args": [{"const": abs(c)}, f]})
        out.append((1 if c > 0 else -1, t))
    return out


def _unit_of_term(f: dict, units: dict) -> str | None:
    """The unit of a term that carries one input's unit: x, min(x, k), max(x - k, 0) (None otherwise)."""
    if "var" in f:
        return units.get(f["var"]) or None
    if f.get("op") in ("min", "max"):
        inner = [a for a in f["args"] if "const" not in a]
        if len(inner) == 1:
            a = inner[0]
            if a.get("op") == "sub" and "var" in a["args"][0] and "const" in a["args"][1]:
                a = a["args"][0]
            return _unit_of_term(a, units) if "var" in a else None
    return None


def to_lines(node, precision: int = 4, units: dict | None = None, unit: str = "") -> str:
    """A sum written one term per line (how a metallurgist reads an additive strength model), identical terms
    merged and each coefficient with its unit (`unit` per unit of the input, e.g. MPa/wt%); a bounded formula
    as its sum S and the bounds."""
    inner, bounds = unbound(node)
    if bounds is not None:
        return (
            f"min(max(S, {bounds[0]:.{precision}g}), {bounds[1]:.{precision}g})   "
            f"(S bounded to the training range), where\n    S = {to_lines(inner, precision, units, unit).lstrip()}"
        )
    parts = merge_terms(terms(node))
    if len(parts) < 4:
        return to_string(node, precision, units)
    lines = []
    for i, (sign, t) in enumerate(parts):
        text = to_string(t, precision, units)
        if t.get("op") == "mul" and "const" in t["args"][0]:
            f = t["args"][1]
            factor = _unit_of_term(f, units or {})
            if unit and not factor and "var" in f and (f["var"].startswith("adequate_") or "=" in f["var"]):
                text = f"{to_string(t['args'][0], precision, units)} {unit} · {to_string(f, precision, units)}"  # a 0/1
            elif unit and factor:
                c = to_string(t["args"][0], precision, units)
                text = f"{c} {unit}/{factor} · {to_string(t['args'][1], precision, units)}"
        elif "const" in t and unit:
            text = f"{text} {unit}"
        if t.get("op") in _INFIX and text.startswith("("):
            text = text[1:-1]  # the term's own outer brackets
        lines.append(("  " if i == 0 and sign > 0 else "+ " if sign > 0 else "- ") + text)
    return "\n    ".join([""] + lines)
