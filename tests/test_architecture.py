"""docs/architecture.md stays true, read from the source (nothing of sortcore is imported): every
module, folder, path and ``module.Class.method`` it names in backticks exists, and its folder
table is the real folders of sortcore/, their modules, tests/test_layout.py's LAYERS and the
lambda zip's LAMBDA_FOLDERS."""

import ast
import re
from functools import lru_cache
from pathlib import Path

from .test_layout import LAYERS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sortcore"
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
FOLDERS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
#: file names of the artifacts the doc describes, not of the tree (written at build time)
EXTENSIONS = ("txt", "json", "yaml", "npz", "onnx", "zip", "md", "db", "lock", "toml", "cfg", "whl", "params")


@lru_cache(maxsize=None)
def parsed(path):
    return ast.parse(Path(path).read_text(encoding="utf-8"))


def module_path(dotted):
    base = ROOT.joinpath(*dotted.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def members(node):
    """Names a module or class body defines: defs, classes, assignments, imports (-> where from),
    and a class's ``self.x`` attributes."""
    found = {}
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[child.name] = child
        elif isinstance(child, (ast.Assign, ast.AnnAssign)):
            for target in child.targets if isinstance(child, ast.Assign) else [child.target]:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found[name.id] = child
        elif isinstance(child, ast.ImportFrom):
            for alias in child.names:
                found[alias.asname or alias.name] = ("import", child, alias.name)
    if isinstance(node, ast.ClassDef):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self" \
                    and isinstance(sub.ctx, ast.Store):
                found.setdefault(sub.attr, sub)
    return found


def imported_from(path, node):
    """The dotted module an ``ImportFrom`` in ``path`` names."""
    if not node.level:
        return node.module
    package = list(path.relative_to(ROOT).with_suffix("").parts)
    package = package[:-1] if package[-1] != "__init__" else package[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def resolve_in(path, node, attrs):
    for i, attr in enumerate(attrs):
        found = members(node).get(attr)
        if found is None:
            return False
        if isinstance(found, tuple):  # re-exported: follow the import
            module = imported_from(path, found[1])
            return resolves("%s.%s" % (module, ".".join((found[2],) + tuple(attrs[i + 1:]))))
        if not isinstance(found, ast.ClassDef):
            return i == len(attrs) - 1
        node = found
    return True


def resolves(dotted):
    """``sortcore.a.b[.Class[.member]]``: a module, then names defined in it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        path = module_path(".".join(parts[:cut]))
        if path is not None:
            return path.suffix == ".py" and (cut == len(parts) or resolve_in(path, parsed(path), parts[cut:]))
    return False


@lru_cache(maxsize=None)
def classes():
    """(path, ClassDef) of every module-level class of sortcore/."""
    return [(path, node) for path in sorted(PACKAGE.rglob("*.py")) for node in parsed(path).body
            if isinstance(node, ast.ClassDef)]


def class_member(dotted):
    """``Class.member`` written short: some module of sortcore/ defines it."""
    first, rest = dotted.split(".")[0], dotted.split(".")[1:]
    return any(node.name == first and resolve_in(path, node, rest) for path, node in classes())


def names():
    return sorted(set(re.findall(r"`([^`\s]+)`", DOC)))


def missing(name):
    """Why ``name`` is not in the tree, or None when it is (or is no name of the tree)."""
    if re.match(r"^[\w./-]+/$", name) or re.match(r"^[\w./-]+\.py$", name):  # a folder or a module file
        if "/" not in name.rstrip("/"):
            hits = list(ROOT.glob("*/" + name)) + list(PACKAGE.rglob(name.rstrip("/"))) + [ROOT / name]
            return None if any(p.exists() for p in hits) else "no such file or folder"
        return None if (ROOT / name).exists() or (PACKAGE / name).exists() else "no such path"
    if not re.match(r"^[A-Za-z_]\w*(\.\w+)+$", name) or name.rsplit(".", 1)[1] in EXTENSIONS:
        return None  # not a dotted name: a topic, a setting, a command, a file the build writes
    first = name.split(".")[0]
    if first == "sortcore":
        return None if resolves(name) else "does not resolve"
    if first in FOLDERS:
        return None if resolves("sortcore." + name) else "does not resolve under sortcore."
    if first[0].isupper():
        return None if class_member(name) else "no class of sortcore/ has it"
    if first in ("greengrass_lambda", "tests"):
        return None if resolves(name) else "does not resolve"
    return "a dotted name of no folder: write it from sortcore. or its folder"


def test_the_doc_names_only_what_exists():
    wrong = {name: why for name, why in ((name, missing(name)) for name in names()) if why}
    assert wrong == {}


def test_the_doc_names_the_payload_path_in_full():
    """The path of one payload is the reason for the doc: it names real methods, not prose."""
    section = DOC.split("## The path of one payload", 1)[1].split("\n## ", 1)[0]
    methods = [n for n in re.findall(r"`([^`\s]+)`", section) if re.match(r"^[\w.]+\.[A-Z]\w*\.\w+$", n)]
    assert len(methods) >= 10 and all(missing(m) is None for m in methods)


def folder_table():
    """{folder: (modules, imports, zip)} from the doc's table; '' is sortcore/ itself."""
    section = DOC.split("## Folders, layers and what ships", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        folder = cells[0].strip("`").rstrip("/")
        folder = "" if folder == "sortcore" else folder
        modules = set(re.findall(r"`(\w+)`", cells[2]))
        imports = set(re.findall(r"`(\w+)/`", cells[3]))
        rows[folder] = (modules, imports, cells[4])
    return rows


def test_the_folder_table_is_the_tree_and_the_layers():
    rows = folder_table()
    assert sorted(rows) == sorted(FOLDERS + [""]) == sorted(LAYERS)
    for folder, (modules, imports, _) in rows.items():
        where = PACKAGE / folder
        real = {p.stem for p in where.glob("*.py") if p.stem != "__init__" or not folder}
        assert modules == real, folder
        assert imports == set(LAYERS[folder]) - {folder}, folder


def test_the_folder_table_says_which_folders_the_lambda_zip_ships():
    tree = parsed(PACKAGE / "devtools" / "package.py")
    (value,) = [node.value for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(t, "id", "") == "LAMBDA_FOLDERS" for t in node.targets)]
    shipped = set(ast.literal_eval(value))
    rows = folder_table()
    assert {f for f, (_, _, zip_cell) in rows.items() if zip_cell == "yes"} == shipped
    assert {f for f, (_, _, zip_cell) in rows.items() if zip_cell == "no"} == set(FOLDERS) - shipped
    assert rows[""][2] == "`__init__.py`"  # of sortcore/ itself, the zip ships only __init__.py


def test_the_checker_fails_on_names_that_do_not_exist():
    for wrong in ("sortcore.core.engine.Engine.no_such_method", "store.database.Nothing", "Store.nothing",
                  "sortcore.nowhere", "runtime/nothing.py", "nothing.py", "engine.feed"):
        assert missing(wrong), wrong
    for right in ("sortcore.core.frames.decode_payload", "store.database.Store.commit", "Core.publish_due",
                  "sortcore.core.engine.UNKNOWN", "runtime/control.py", "greengrass_lambda/", "schema.py"):
        assert missing(right) is None, right
