"""The `policy.factory` hook: a user's `package.module:function` that builds each agent type's network.

A factory is called as `factory(layout, options)` and must return a torch `nn.Module`. A bad one
(not found, not callable, the wrong arguments, nothing useful returned) should stop a workflow when
its config is read, not an hour later when the first training job starts. Reading the config must
stay fast, though (Snakemake builds the plan on every call, and importing torch costs seconds), so
`check_factory` judges a factory from its module's source where it can, without importing it: the
module is located on the search path, parsed, and the function's definition read. Only when the
source cannot tell (a compiled module, a name assigned or re-exported rather than defined) is the
module imported. Whether the returned object really is an `nn.Module` is known only by calling the
factory, which needs torch and the environment: `load_factory` checks that when the job builds its
networks.

Imports only `envs` (for ConfigError), like `pipeline.config`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import os
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from typing import Any

from envs.rbc.config import ConfigError

ALLOWED = "null, or 'package.module:function' called as function(layout, options) that returns a torch nn.Module"
_LITERALS = (ast.Constant, ast.Dict, ast.List, ast.Tuple, ast.Set, ast.JoinedStr, ast.ListComp, ast.DictComp)


def _fail(key: str, path: Any, why: str) -> None:
    raise ConfigError(f"invalid config: {key}={path!r} ({why}); allowed: {ALLOWED}")


def _split(path: Any, key: str) -> tuple[str, str]:
    module_name, sep, attribute = path.partition(":") if isinstance(path, str) else ("", "", "")
    if not sep or not module_name or not attribute:
        _fail(key, path, "not of the form 'package.module:function'")
    return module_name, attribute


def load_factory(path: str, key: str = "policy.factory") -> Callable:
    """Import the factory and check that it can be called with (layout, options)."""
    module_name, attribute = _split(path, key)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # a user's module may fail to import in any way
        _fail(key, path, f"module {module_name!r} cannot be imported: {type(err).__name__}: {err}")
    if not hasattr(module, attribute):
        _fail(key, path, f"module {module_name!r} has no {attribute!r}")
    factory = getattr(module, attribute)
    check_callable(factory, path, key)
    return factory


def check_callable(factory: Any, path: str, key: str) -> None:
    if isinstance(factory, type) and not any(
        c.__module__ == "torch.nn.modules.module" and c.__name__ == "Module" for c in factory.__mro__
    ):
        _fail(key, path, f"the class {factory.__name__} does not make a torch nn.Module")
    if not callable(factory):
        _fail(key, path, f"{type(factory).__name__!r} object, not callable")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins keep their signature to themselves
        return
    try:
        signature.bind(None, None)
    except TypeError as err:
        _fail(key, path, f"it cannot be called with (layout, options): {err}")


def check_factory(path: str | None, key: str = "policy.factory") -> None:
    """ConfigError unless `path` can be a factory, as far as its source tells; imports only when it cannot."""
    if path is None:
        return
    module_name, attribute = _split(path, key)
    if module_name not in sys.modules:
        spec = _find_spec(module_name)
        if spec is None:
            _fail(key, path, f"module {module_name!r} is not found in the working directory or on sys.path")
        source = _source(spec)
        if source is not None:
            try:
                tree = ast.parse(source, filename=spec.origin)
            except SyntaxError as err:
                _fail(key, path, f"{spec.origin} line {err.lineno}: {err.msg}")
            if _judge_source(tree, attribute, path, key):
                return
    load_factory(path, key)  # compiled, or the name is bound in a way only importing resolves


def _find_spec(name: str) -> ModuleSpec | None:
    """The module's spec, found without importing it or its parent packages (which may import torch)."""
    search = [os.getcwd(), *sys.path]  # jobs run `python -m` in the working directory, which puts it first
    parts = name.split(".")
    spec = None
    for i in range(len(parts)):
        prefix = ".".join(parts[: i + 1])
        loaded = sys.modules.get(prefix)
        if loaded is not None:
            search = list(getattr(loaded, "__path__", None) or [])
            continue
        spec = importlib.machinery.PathFinder.find_spec(prefix, search)
        if spec is None and i == 0:
            spec = importlib.machinery.BuiltinImporter.find_spec(prefix)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    return spec


def _source(spec: ModuleSpec) -> str | None:
    origin = spec.origin or ""
    if origin.endswith(".py") and os.path.isfile(origin):
        with open(origin, encoding="utf-8") as handle:
            return handle.read()
    return None


def _judge_source(tree: ast.Module, attribute: str, path: str, key: str) -> bool:
    """True when the source settles that `attribute` is a usable factory; raises when it settles the opposite."""
    direct, indirect = None, False
    for node in tree.body:
        if _binds(node, attribute):
            direct = node
        elif isinstance(node, (ast.If, ast.Try, ast.With)) and any(_binds(n, attribute) for n in ast.walk(node)):
            indirect = True
        elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            indirect = True
        elif isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            indirect = True
    if direct is None and not indirect:
        _fail(key, path, f"its module defines no {attribute!r}")
    if indirect or not isinstance(direct, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False  # a class, an assignment or an import: only the imported object tells
    if isinstance(direct, ast.AsyncFunctionDef):
        _fail(key, path, "an async function returns a coroutine, not a network")
    args = direct.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    if required > 2 or (positional < 2 and args.vararg is None) or any(d is None for d in args.kw_defaults):
        _fail(key, path, f"it cannot be called with (layout, options): def {attribute}({ast.unparse(args)})")
    returned = _returned(direct)
    if returned is not None:
        _fail(key, path, returned)
    return True


def _binds(node: ast.stmt, name: str) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t))
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name.partition(".")[0]) == name for a in node.names)
    return False


def _returned(function: ast.FunctionDef) -> str | None:
    """Why the function's return statements cannot produce a network, or None when they may."""
    own = list(_own_nodes(function))
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own):
        return "it is a generator: it returns a generator, not a network"
    returns = [n for n in own if isinstance(n, ast.Return)]
    if not returns:
        return "it has no return statement: it returns None, not a network"
    if all(r.value is None or isinstance(r.value, _LITERALS) for r in returns):
        shown = ast.unparse(returns[0].value) if returns[0].value is not None else "None"
        return f"it returns {shown}, not a network"
    return None


def _own_nodes(function: ast.FunctionDef):
    """The function's nodes, without those of functions and classes defined inside it."""
    stack = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
