import importlib


def task_file_to_task_class(task_file: str):
    name = task_file.replace(".py", "")
    class_name = "".join(w[0].upper() + w[1:] for w in name.split("_"))
    module = importlib.import_module(f"rlbench.tasks.{name}")
    return getattr(module, class_name)
