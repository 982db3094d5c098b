"""A heapgraph workload of many small reference cycles, garbage and live.

Garbage, each kind ``COUNT`` times: a list holding itself; two instances pointing at each other;
a ring of three dicts; a list cycle with an untracked tuple of atoms and a chain of two lists
hanging off it. Live: the same shapes again, reachable from the returned list, and cycles held
only through a garbage-free tuple.
"""

COUNT = 30


class Pair:
    __slots__ = ("peer", "tag")


def self_list():
    items = []
    items.append(items)
    return items


def pair():
    first = Pair()
    second = Pair()
    first.peer = second
    second.peer = first
    first.tag = second.tag = 7
    return first


def dict_ring():
    x, y, z = {}, {}, {}
    x["next"] = y
    y["next"] = z
    z["next"] = x
    return x


def cycle_with_tail():
    head = [(1, 2.0, "atoms")]
    head.append(head)
    head.append([[head]])
    return head


SHAPES = (self_list, pair, dict_ring, cycle_with_tail)


def build():
    for _ in range(COUNT):
        for shape in SHAPES:
            shape()  # dropped at once: garbage
    live = []
    for _ in range(COUNT):
        for shape in SHAPES:
            live.append(shape())
    return live, (self_list(), pair())
