"""Loading a Fabric task: the fabfile executed as a module, the task found by its dotted name.

A fabfile is executed again only when it changed on disk, so every host of a wave
runs the same loaded task.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from invoke.tasks import Task

MESSAGE_CAP = 300  # characters of an exception's message kept in the one-line error


class TaskNotLoadable(Exception):
    """A hook's Fabric task cannot be loaded; the message names the fabfile and the task."""


def split_reference(reference: str) -> tuple[Path, str]:
    """``"/srv/fabfile.py:db.migrate"`` → ``(Path("/srv/fabfile.py"), "db.migrate")``."""
    path, _, name = reference.rpartition(":")
    return Path(path), name


def task_label(reference: str) -> str:
    """How a task is named in messages about a host: ``fabfile.py:migrate``."""
    path, name = split_reference(reference)
    return f"{path.name}:{name}"


def one_line(text: str, cap: int = MESSAGE_CAP) -> str:
    """``text`` on one line, cut to ``cap`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= cap else flat[: cap - 3] + "..."


def describe_exception(error: BaseException) -> str:
    """``RuntimeError: schema is locked``, on one line."""
    message = one_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


_modules: dict[Path, tuple[tuple[int, int], ModuleType]] = {}
_modules_lock = threading.Lock()


def _load_module(path: Path, name: str) -> ModuleType:
    """The fabfile at ``path`` executed as a module; executed again only when the file changed."""
    try:
        info = path.stat()
    except OSError as error:
        raise TaskNotLoadable(
            f"cannot load Fabric task {name}: cannot read {path}: {error.strerror or error}"
        ) from None
    stamp = (info.st_mtime_ns, info.st_size)
    with _modules_lock:  # sys.path and sys.modules are shared by every thread
        cached = _modules.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        module_name = "deployer_fabfile_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise TaskNotLoadable(f"cannot load Fabric task {name}: {path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        folder = str(path.parent)
        # As the fab command does, the fabfile's folder is importable (for its own helper
        # modules): first while it runs, then last, where it shadows nothing.
        sys.path.insert(0, folder)
        sys.modules[module_name] = module  # dataclasses and pickling look a module up here
        try:
            spec.loader.exec_module(module)
        except SyntaxError as error:
            del sys.modules[module_name]
            where = f"{path} line {error.lineno}" if error.lineno else str(path)
            raise TaskNotLoadable(f"cannot load Fabric task {name}: {where}: {error.msg}") from None
        except Exception as error:  # the fabfile's own code failed: a spec problem, told in one line
            del sys.modules[module_name]
            raise TaskNotLoadable(
                f"cannot load Fabric task {name}: importing {path} raised {describe_exception(error)}"
            ) from None
        finally:
            sys.path.remove(folder)
            if folder not in sys.path:
                sys.path.append(folder)
        _modules[path] = (stamp, module)
        return module


def _task_names(module: ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if isinstance(value, Task)
        or (inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_"))
    )


def load_task(reference: str) -> Callable[..., object]:
    """The function behind ``"/abs/fabfile.py:task"``: an invoke/Fabric ``@task``'s body, or
    a plain function. ``db.migrate`` walks attributes; ``-`` may stand for ``_`` as on the
    fab command line. Raises :class:`TaskNotLoadable`."""
    path, name = split_reference(reference)
    module = _load_module(path, name)
    found: object = module
    for part in name.split("."):
        for attribute in dict.fromkeys((part, part.replace("-", "_"))):
            if hasattr(found, attribute):
                found = getattr(found, attribute)
                break
        else:
            tasks = ", ".join(_task_names(module)) or "none"
            raise TaskNotLoadable(f"no Fabric task {name} in {path} (its tasks: {tasks})")
    body = found.body if isinstance(found, Task) else found
    if not callable(body) or isinstance(body, type):
        raise TaskNotLoadable(
            f"{name} in {path} is not a Fabric task or a function (it is a {type(body).__name__})"
        )
    return body
