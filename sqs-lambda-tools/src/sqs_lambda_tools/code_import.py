"""Importing the project's own code (its handler, its sample function) from its code folder,
as Lambda imports the handler from the artifact's root.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from .project import Project


def import_module(project: Project, module_name: str, *, fresh: bool = False) -> ModuleType:
    """``module_name`` of ``project``, imported from its code folder when it is there.

    ``fresh``: the module's top-level package is taken out of ``sys.modules`` first, so its
    code runs again as in a new execution environment (module state, settings read once,
    clients, all start afresh). Without it a module already imported is reused, unless it
    came from another folder than this project's (another copy of a project whose package
    has the same name). Errors of the import propagate.
    """
    package = module_name.split(".", 1)[0]
    loaded = sys.modules.get(package)
    holds = holds_package(project.code_dir, package)
    if fresh or (loaded is not None and holds and not _imported_from(loaded, project.code_dir)):
        purge(package)
    return import_from_folder(project.code_dir, module_name)


def import_from_folder(folder: Path, module_name: str) -> ModuleType:
    """``module_name``, with ``folder`` first on the path when it holds the module's
    package (or when nothing else on the path does): what an execution environment's
    worker does with its ``LAMBDA_TASK_ROOT``. Errors of the import propagate."""
    package = module_name.split(".", 1)[0]
    if holds_package(folder, package) or _find(package) is None:
        _first_on_path(folder)
    return importlib.import_module(module_name)


def purge(package: str) -> dict[str, ModuleType]:
    """Take ``package`` and its modules out of ``sys.modules``; what was there."""
    names = [name for name in sys.modules if name == package or name.startswith(f"{package}.")]
    return {name: sys.modules.pop(name) for name in names}


def holds_package(folder: Path, package: str) -> bool:
    """Whether ``folder`` holds ``package`` (a package folder or a module file)."""
    return (folder / package).is_dir() or (folder / f"{package}.py").is_file()


def _find(package: str) -> object:
    try:
        return importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None


def _imported_from(module: ModuleType, folder: Path) -> bool:
    locations = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
    root = folder.resolve()
    return any(
        location is not None and Path(location).resolve().is_relative_to(root)
        for location in locations
    )


def _first_on_path(folder: Path) -> None:
    entry = str(folder)
    if sys.path[:1] != [entry]:
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
        importlib.invalidate_caches()
