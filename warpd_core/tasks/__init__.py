"""Tasks WARPD learns and is evaluated on: the default reach_around arm task and Metaworld MT10,
all behind one interface (base.Task), built by name through registry.make_task."""
from warpd_core.tasks.base import Expert, StepResult, Task, TaskSpec
from warpd_core.tasks.registry import DEFAULT_TASK, make_task, task_names

__all__ = ["DEFAULT_TASK", "Expert", "StepResult", "Task", "TaskSpec", "make_task", "task_names"]
