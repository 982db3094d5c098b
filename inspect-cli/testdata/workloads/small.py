"""A tiny heapgraph workload whose garbage is known in advance.

build() leaves exactly these cycles unreachable (the exporter test checks them by type):

* a list that contains itself;
* a dict that contains itself;
* two ``Node`` instances pointing at each other (their attributes live inline, so the cycle
  has no dict objects);
* a ``Finalized`` instance (it has ``__del__``) in a cycle with a list;
* a ``Node`` that is the target of a weak reference, in a cycle with itself.

It returns a live structure: a ``Node`` cycle, a list of atoms, a weak reference, and a tuple.
"""

# _weakref.ref is weakref.ref; importing the weakref module would add some 2,200 objects
# (_collections_abc, _weakrefset, types) to a file meant to stay small.
from _weakref import ref


class Node:
    def __init__(self, name):
        self.name = name
        self.other = None


class Finalized:
    finalized = 0

    def __del__(self):
        Finalized.finalized += 1


def build():
    loop = []
    loop.append(loop)

    table = {}
    table["self"] = table

    a = Node("a")
    b = Node("b")
    a.other = b
    b.other = a

    f = Finalized()
    f.holder = [f]

    target = Node("target")
    target.other = target
    dead_ref = ref(target)

    live = Node("live")
    live.other = live
    return {
        "node": live,
        "atoms": [1, 2.5, "text", b"bytes", 10**30, None, True],
        "weak": dead_ref,
        "pair": (live, "pair"),
    }
