"""The layout's contract, read from the source (no import runs): each folder imports only the
layers below it (docs/architecture.md), heavy libraries only where they may be, no import
cycles, modules and functions within their size."""

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sortcore"

#: top-level module -> the sortcore paths allowed to import it
ONLY_IN = {
    "paho": ("adapters/mqtt.py",),
    "greengrasssdk": ("adapters/greengrass.py",),
    "awsiot": ("adapters/greengrass_v2.py",),
    "awscam": ("camera/deeplens.py",), "mo": ("camera/deeplens.py",),
    "prometheus_client": ("web/metrics.py",),  # which the server imports only for GET /metrics
}
HEAVY = ("numpy", "mxnet", "cv2", "onnxruntime", "onnx", "PIL", "matplotlib")
HEAVY_FOLDERS = ("classifier/", "camera/", "training/", "devtools/")
HEAVY_ALSO = ("cli/model.py", "cli/count.py")  # lazily, inside a command

#: folder -> the sortcore folders its modules may import (its own included). The camera
#: runtime (core, store, adapters, camera, classifier, runtime: the lambda zip) never
#: imports offline/, training/, web/, cli/ or devtools/; only cli/ imports devtools/.
CAMERA = ("core", "store", "adapters", "camera", "classifier", "runtime")
LAYERS = {
    "core": ("core",),
    "store": ("core", "store"),
    "adapters": ("core", "adapters"),
    "classifier": ("core", "classifier"),
    "camera": ("core", "classifier", "camera"),  # camera/deeplens.py runs the model on the device
    "runtime": CAMERA,
    "web": ("core", "web"),
    "offline": CAMERA + ("offline",),
    "training": ("core", "classifier", "camera", "training"),
    "devtools": CAMERA + ("offline", "training", "web", "devtools"),
    "cli": CAMERA + ("offline", "training", "web", "devtools", "cli"),
    "": ("cli",),  # sortcore/__init__.py, __main__.py
}


@functools.lru_cache(maxsize=None)
def modules():
    """(relative path, path, tree) of every module, parsed once for all the tests."""
    return tuple((path.relative_to(PACKAGE).as_posix(), path, ast.parse(path.read_text(encoding="utf-8")))
                 for path in sorted(PACKAGE.rglob("*.py")))


def imports(rel, tree):
    """(absolute dotted name, lineno) of every import in a module, relative ones resolved."""
    package = ["sortcore"] + rel[:-3].split("/")[:-1]
    if rel.endswith("__init__.py"):
        package = ["sortcore"] + rel.split("/")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                yield target, node.lineno
                for alias in node.names:
                    yield target + "." + alias.name, node.lineno
            else:
                yield node.module, node.lineno


def folder_of(rel):
    return rel.split("/")[0] if "/" in rel else ""


def test_every_folder_has_a_layer_and_every_layer_a_folder():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} | {""}
    named = {f for allowed in LAYERS.values() for f in allowed} | set(LAYERS)
    assert folders == set(LAYERS) and named <= folders
    assert all((PACKAGE / rel).is_file() for rel in HEAVY_ALSO + tuple(r for v in ONLY_IN.values() for r in v))


def test_each_folder_imports_only_the_layers_it_may():
    wrong = []
    for rel, _, tree in modules():
        for name, line in imports(rel, tree):
            parts = name.split(".")
            if parts[0] in ("research", "benchmarks", "tests", "scripts"):
                wrong.append((rel, name, line))
            elif parts[0] == "sortcore" and len(parts) > 1 and (PACKAGE / parts[1] / "__init__.py").is_file():
                if parts[1] not in LAYERS[folder_of(rel)]:
                    wrong.append((rel, name, line))
    assert wrong == []


def test_adapters_are_the_only_importers_of_their_library():
    wrong = [(rel, name, line) for rel, _, tree in modules() for name, line in imports(rel, tree)
             if name.split(".")[0] in ONLY_IN and rel not in ONLY_IN[name.split(".")[0]]]
    assert wrong == []


def test_heavy_imports_live_in_the_folders_that_may_have_them():
    wrong = [(rel, name, line) for rel, _, tree in modules() for name, line in imports(rel, tree)
             if name.split(".")[0] in HEAVY and not rel.startswith(HEAVY_FOLDERS) and rel not in HEAVY_ALSO]
    assert wrong == []


def test_no_import_cycles_between_modules():
    names = {}
    for rel, _, _ in modules():
        dotted = "sortcore." + rel[:-3].replace("/", ".")
        names[dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted] = rel
    edges = {}
    for rel, _, tree in modules():
        me = next(k for k, v in names.items() if v == rel)
        for name, _ in imports(rel, tree):
            while name and name not in names:
                name = name.rpartition(".")[0]
            if name and name != me and not me.startswith(name + "."):
                edges.setdefault(me, set()).add(name)
    # a module is on a cycle when it can reach itself
    for start in edges:
        seen, todo = set(), list(edges[start])
        while todo:
            node = todo.pop()
            assert node != start, "import cycle through %s" % start
            if node not in seen:
                seen.add(node)
                todo.extend(edges.get(node, ()))


def test_modules_and_functions_stay_small():
    big = [rel for rel, path, _ in modules() if len(path.read_text(encoding="utf-8").splitlines()) > 400]
    long = ["%s:%s" % (rel, node.name) for rel, _, tree in modules() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60]
    assert big == []
    assert long == []
