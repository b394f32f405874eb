"""The package's shape: no import cycles, dependencies that point one way, no private names across packages,
and a config that reads without the tokenizer libraries."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pricecurate"

# Lower layers never import higher ones; a module may import its own layer and any layer below.
LAYERS = [
    {"pricecurate.errors", "pricecurate.masking", "pricecurate.paths", "pricecurate.units", "pricecurate.rules"},
    {"pricecurate.tokenizer", "pricecurate.config", "pricecurate.sample"},
    {"pricecurate.spark"},
    {"pricecurate.output"},
    {"pricecurate.report", "pricecurate.evaluate", "pricecurate.export"},
    {"pricecurate.pipeline"},
    {"pricecurate.cli"},
]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: set[str]) -> list[tuple[str, str | None, bool]]:
    """(module imported, name imported from it or None, at module level) for every pricecurate import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, id(node) in top) for alias in node.names if alias.name.startswith("pricecurate")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pricecurate"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.append((child, None, id(node) in top) if child in known else (node.module, alias.name, id(node) in top))
    return found


def layer(module: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def test_dependencies_point_down_the_layers():
    known = modules()
    wrong = [f"{module} imports {target}" for module, path in known.items() if module != "pricecurate"
             for target, _, _ in imports(path, set(known)) if layer(target) > layer(module)]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_among_modules():
    known = modules()
    graph = {module: {t for t, _, top in imports(path, set(known)) if top and t != module}
             for module, path in known.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]) if target in trail else target)
            elif target in graph and not state.get(target):
                visit(target, trail + [target])
        state[module] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_no_module_imports_a_private_name_of_another_package():
    known = modules()
    private = [f"{module} imports {target}.{name}" for module, path in known.items()
               for target, name, _ in imports(path, set(known))
               if name and name.startswith("_") and target.rpartition(".")[0] != module.rpartition(".")[0]]
    assert not private, "\n".join(private)


def test_the_config_reads_without_the_tokenizer_libraries():
    blocker = ("import sys\n"
               "class Block:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in ('tokenizers', 'transformers', 'tiktoken', 'pyspark'):\n"
               "            raise ImportError(f'blocked: {name}')\n"
               "sys.meta_path.insert(0, Block())\n"
               "from pricecurate.config import load_config\n"
               "print(load_config('conf/default.yaml').tokenizer)\n")
    done = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "llama-3.1-8b"
