"""Task names -> task objects: the one place a name like "reach_around" is resolved.

Unknown names fail with the list of known ones. Tasks are built lazily (importing a task module
loads MuJoCo models), so listing names is cheap. The Metaworld MT10 tasks are registered by
explicit name ("metaworld/push-v3", ...); Metaworld itself is imported only when one is built.
"""
from __future__ import annotations

import difflib
from typing import Callable

from warpd_core.errors import WarpdError
from warpd_core.tasks.base import Task
from warpd_core.tasks.metaworld_tasks import metaworld_factories

DEFAULT_TASK = "reach_around"

_FACTORIES: dict[str, Callable[..., Task]] = {}


def register(name: str, factory: Callable[..., Task]) -> None:
    _FACTORIES[name] = factory


def _reach_around(**kwargs) -> Task:
    from warpd_core.tasks.reach_around import ReachAroundTask

    return ReachAroundTask(**kwargs)


def _panda(interface: str) -> Callable[..., Task]:
    def build(**kwargs) -> Task:
        from warpd_core.tasks.panda_reach_around import PandaReachAroundTask

        return PandaReachAroundTask(interface=interface, **kwargs)
    return build


register("reach_around", _reach_around)
register("panda_reach_around", _panda("velocity"))
register("panda_reach_around_position", _panda("position"))
for _name, _factory in metaworld_factories().items():
    register(_name, _factory)


def task_names() -> list[str]:
    return sorted(_FACTORIES)


def make_task(name: str, **kwargs) -> Task:
    """Build the task called `name` (see task_names()); kwargs go to its constructor."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise unknown_task_error(name) from None
    return factory(**kwargs)


def unknown_task_error(name: str) -> WarpdError:
    """The error for a task name that is not registered: close matches, then every known name."""
    close = difflib.get_close_matches(name, _FACTORIES, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return WarpdError(f"unknown task {name!r}", hint + "known tasks: " + ", ".join(task_names()))
