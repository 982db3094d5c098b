"""Export a CPython 3.11 heap and the cycle collector's verdict as a heapgraph file.

    python3 export_heapgraph.py [--lean] WORKLOAD.py OUT.jsonl

WORKLOAD.py defines build(); the format is shared/heapgraph-format.md, version 1. The work is
done by heapgraph_exporter.py beside this file (read its docstring). This launcher stays tiny
on purpose: CPython keeps the parser's tokens of the main script alive until the script ends
(some 9,000 str and bytes objects for a 600-line file), and they would all be in the exported
heap. The implementation is executed from its text with exec(), whose parse arena is freed at
once. (Not compile(): its first call creates the ~110 classes of the ast module, some 800
objects; tracebacks name the implementation "<string>", with its line numbers.)
"""

import gc

gc.disable()  # before anything else: no collection may run before the measured one

import sys  # noqa: E402


def implementation():
    """Loads heapgraph_exporter.py as a module, without the import system (no __pycache__)."""
    path = (__file__.rpartition("/")[0] or ".") + "/heapgraph_exporter.py"
    with open(path, "rb") as f:
        source = f.read().decode("utf-8")
    module = type(sys)("heapgraph_exporter")
    module.__file__ = path
    sys.modules[module.__name__] = module
    exec(source, module.__dict__)
    return module


if __name__ == "__main__":
    sys.exit(implementation().cli(sys.argv))
