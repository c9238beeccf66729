"""Automatic findings on submitted code: an AST walk, no execution.

The factory admin sees these next to each code request. They flag what an
aggregate-counting function never needs: system, network, process and
serialization modules; ``open``/``eval``/``exec``/``compile``/``__import__``;
``getattr`` tricks and dunder introspection that reach the builtins; and any file
access (reading anything outside the input assets, writing anything at all).

Examples
--------
>>> source = '''
... def steal(images):
...     import subprocess
...     return open("/etc/passwd").read()
... '''
>>> [f.kind for f in scan_code(source)]
['forbidden-import', 'forbidden-call']
>>> scan_code("def mean(images):\\n    import numpy as np\\n    return float(np.mean(images))\\n")
[]
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

FORBIDDEN_MODULES = frozenset(
    {
        "os", "sys", "subprocess", "socket", "shutil", "pathlib", "pickle", "ctypes",
        "importlib", "requests", "urllib", "urllib3", "http", "httpx", "aiohttp",
        "threading", "multiprocessing", "concurrent", "asyncio", "builtins", "tempfile",
        "glob", "signal", "marshal", "shelve", "dill", "cloudpickle", "io", "inspect",
        "gc", "code", "codeop", "pty", "ftplib", "smtplib", "telnetlib", "webbrowser",
        "syft", "workbench.imaging.io", "workbench.remote",
    }
)  # fmt: skip
FORBIDDEN_CALLS = frozenset(
    {
        "open", "eval", "exec", "compile", "__import__", "globals", "locals", "vars",
        "breakpoint", "input", "exit", "quit", "load_image", "list_images",
    }
)  # fmt: skip
# Methods that read or write files whatever object they are called on.
FILE_METHODS = frozenset(
    {
        "read_text", "read_bytes", "write_text", "write_bytes", "unlink", "rmdir", "mkdir",
        "rename", "touch", "imread", "imwrite", "imsave", "fromfile", "tofile", "loadtxt",
        "savetxt", "genfromtxt", "savez", "savez_compressed", "memmap", "to_csv",
        "to_pickle", "to_parquet", "read_csv", "read_pickle", "read_parquet", "read_excel",
        "read_json",
    }
)  # fmt: skip
# module.function pairs that touch files (np.load, torch.save, Image.open ...).
FILE_FUNCTIONS = frozenset(
    {
        ("np", "load"), ("np", "save"), ("numpy", "load"), ("numpy", "save"),
        ("torch", "load"), ("torch", "save"), ("Image", "open"), ("json", "load"),
        ("json", "dump"), ("tifffile", "TiffFile"),
    }
)  # fmt: skip
ATTRIBUTE_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
HARMLESS_DUNDERS = frozenset({"__init__", "__name__", "__len__", "__doc__"})


@dataclass(frozen=True)
class Finding:
    """One flagged place in the submitted code.

    Attributes
    ----------
    line : int
        Line number in the submitted source (1-based).
    kind : str
        ``forbidden-import``, ``forbidden-call``, ``file-access`` or ``introspection``.
    message : str
        What was found, in one sentence.
    """

    line: int
    kind: str
    message: str


def scan_code(source: str) -> list[Finding]:
    """Return the findings on `source`, in line order (empty list: nothing flagged).

    Parameters
    ----------
    source : str
        Python source of the submitted function(s).

    Returns
    -------
    list of Finding
        A syntax error is itself one finding.

    Examples
    --------
    >>> scan_code("def f(x):\\n    return getattr(__builtins__, 'ev' + 'al')('1')\\n")[0].message
    "getattr on '__builtins__'"
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [Finding(error.lineno or 0, "forbidden-call", f"code does not parse: {error.msg}")]
    findings = []
    for node in ast.walk(tree):
        findings.extend(_node_findings(node))
    return sorted(set(findings), key=lambda finding: (finding.line, finding.message))


def _node_findings(node: ast.AST) -> list[Finding]:
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        module = node.module or ""
        full = [f"{module}.{alias.name}" for alias in node.names]
        names = [module] if _forbidden_module(module) else full
    elif isinstance(node, ast.Call):
        return _call_findings(node, line)
    elif isinstance(node, ast.Attribute) and _is_dunder(node.attr):
        return [Finding(line, "introspection", f"access to the dunder attribute {node.attr}")]
    elif isinstance(node, ast.Name) and _is_dunder(node.id):
        return [Finding(line, "introspection", f"use of {node.id}")]
    else:
        return []
    return [
        Finding(line, "forbidden-import", f"import of {name}")
        for name in names
        if _forbidden_module(name)
    ]


def _call_findings(node: ast.Call, line: int) -> list[Finding]:
    function = node.func
    if isinstance(function, ast.Name):
        if function.id in FORBIDDEN_CALLS:
            return [Finding(line, "forbidden-call", f"call of {function.id}()")]
        if function.id in ATTRIBUTE_CALLS:
            return _attribute_call_findings(node, function.id, line)
        return []
    if not isinstance(function, ast.Attribute):
        return []
    owner = function.value.id if isinstance(function.value, ast.Name) else ""
    if function.attr in FILE_METHODS or (owner, function.attr) in FILE_FUNCTIONS:
        label = f"{owner}.{function.attr}" if owner else f".{function.attr}"
        return [Finding(line, "file-access", f"file access through {label}()")]
    if function.attr in FORBIDDEN_CALLS and owner in {"builtins", "__builtins__"}:
        return [Finding(line, "forbidden-call", f"call of {owner}.{function.attr}()")]
    return []


def _attribute_call_findings(node: ast.Call, name: str, line: int) -> list[Finding]:
    # getattr(obj, "mean") is fine; a computed name or a builtins target is a way round
    # the checks above.
    target = node.args[0] if node.args else None
    if isinstance(target, ast.Name) and target.id in {"__builtins__", "builtins"}:
        return [Finding(line, "introspection", f"{name} on {target.id!r}")]
    attribute = node.args[1] if len(node.args) > 1 else None
    if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
        return [Finding(line, "introspection", f"{name} with a computed attribute name")]
    if attribute.value.startswith("_"):
        private = attribute.value
        return [Finding(line, "introspection", f"{name} of the private attribute {private}")]
    return []


def _forbidden_module(name: str) -> bool:
    parts = name.split(".")
    return any(".".join(parts[: i + 1]) in FORBIDDEN_MODULES for i in range(len(parts)))


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in HARMLESS_DUNDERS
