"""A heapgraph workload that imports a good part of the standard library.

It is the exporter's robustness test: some 45 modules and their classes, caches, compiled
regular expressions and code, then garbage of the kinds real programs leave behind:

* minidom documents (every node points at its parent and its owner document);
* dataclass trees whose children point back at their parents;
* AST trees given parent links;
* self-referencing lists and dicts, and a dict ring;
* an argparse parser (its actions and groups refer to each other);
* an exception caught and kept in a local (exception -> traceback -> frame -> exception);
* a suspended generator kept alive only by a cycle (the collector closes it);
* an object whose ``__del__`` resurrects it into a live list (it is in ``not_saved``).

build() returns a live structure that uses the same kinds, so both verdicts are exercised.
"""

import argparse
import ast
import base64
import bisect
import calendar
import collections
import configparser
import copy
import csv
import dataclasses
import datetime
import decimal
import difflib
import email
import email.message
import email.parser
import enum
import fractions
import functools
import hashlib
import heapq
import html.parser
import http.client
import inspect
import io
import itertools
import json
import logging
import math
import operator
import pathlib
import pickle
import pprint
import random
import re
import shlex
import statistics
import string
import struct
import textwrap
import threading
import typing
import urllib.parse
import uuid
import weakref
import xml.dom.minidom
import xml.etree.ElementTree
import zlib

RESURRECTED = []


class Phoenix:
    """Resurrects itself when finalized."""

    def __init__(self):
        self.me = self

    def __del__(self):
        RESURRECTED.append(self)


@dataclasses.dataclass
class TreeNode:
    name: str
    parent: typing.Optional["TreeNode"] = None
    children: typing.List["TreeNode"] = dataclasses.field(default_factory=list)

    def add(self, name):
        child = TreeNode(name, self)
        self.children.append(child)
        return child


class Color(enum.Enum):
    RED = 1
    GREEN = 2


Point = collections.namedtuple("Point", "x y")

XML = """<?xml version="1.0"?>
<library><shelf id="a"><book year="1999">One</book><book year="2004">Two</book></shelf>
<shelf id="b"><book year="2011">Three</book></shelf></library>"""

MAIL = """From: someone@example.org
To: other@example.org
Subject: heap graphs

A message body, long enough to be a message body.
"""

SOURCE = inspect.getsource(textwrap)


def dataclass_tree(depth, fanout, prefix="n"):
    root = TreeNode(prefix)
    level = [root]
    for d in range(depth):
        level = [node.add("%s%d%d" % (prefix, d, i)) for node in level for i in range(fanout)]
    return root


def parented_ast(source):
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node
    return tree


def caught_exception():
    try:
        json.loads("{not json")
    except json.JSONDecodeError as exc:
        kept = exc  # the frame's locals now hold the exception that holds the frame
    return len(str(kept))


def counting():
    for i in itertools.count():
        yield i


def exercise():
    """Uses the modules, so that their caches and lazily built parts are in the heap."""
    doc = xml.dom.minidom.parseString(XML)
    tree = xml.etree.ElementTree.fromstring(XML)
    years = [int(b.get("year")) for b in tree.iter("book")]
    message = email.parser.Parser().parsestr(MAIL)
    headers = http.client.parse_headers(io.BytesIO(b"Content-Type: text/plain\r\nX-A: 1\r\n\r\n"))
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(["--count", "5", "a", "b"])
    config = configparser.ConfigParser()
    config.read_string("[section]\nkey = value\n")
    rows = list(csv.reader(io.StringIO("a,b\n1,2\n")))
    numbers = [decimal.Decimal("1.1") * 3, fractions.Fraction(3, 7) + 1, statistics.mean(years)]
    stamp = datetime.datetime(2024, 5, 17, 12, 30) + datetime.timedelta(days=3)
    return {
        "doc": doc,
        "tree": tree,
        "years": years,
        "message": message,
        "headers": dict(headers),
        "args": vars(args),
        "config": {s: dict(config[s]) for s in config.sections()},
        "rows": rows,
        "numbers": numbers,
        "stamp": stamp,
        "calendar": calendar.monthrange(2024, 2),
        "diff": list(difflib.unified_diff(["a\n", "b\n"], ["a\n", "c\n"])),
        "hash": hashlib.sha256(b"heap").hexdigest(),
        "b64": base64.b64encode(zlib.compress(b"heap" * 10)),
        "pickle": pickle.loads(pickle.dumps({"p": (1, 2), "f": fractions.Fraction(1, 3)})),
        "point": Point(1, 2),
        "copy": copy.deepcopy({"k": [1, 2, {"n": None}]}),
        "heap": heapq.nsmallest(3, [5, 1, 4, 2, 3]),
        "bisect": bisect.bisect([1, 3, 5], 4),
        "url": urllib.parse.urlsplit("https://example.org/a/b?c=d#e"),
        "uuid": uuid.UUID(int=random.Random(7).getrandbits(128)),
        "path": pathlib.PurePosixPath("/usr/lib/python3.11/json/__init__.py").parts,
        "shlex": shlex.split("a 'b c' d"),
        "pprint": pprint.pformat({"x": list(range(30))}, width=40),
        "struct": struct.unpack("<IH", struct.pack("<IH", 7, 9)),
        "regex": re.findall(r"\b\w+\b", SOURCE[:2000]),
        "template": string.Template("$a and $b").substitute(a=1, b=2),
        "reduce": functools.reduce(operator.add, range(10)),
        "math": math.fsum([0.1] * 10),
        "color": Color.GREEN,
        "logger": logging.getLogger("heapgraph.workload"),
        "lock": threading.Lock(),
        "html": html.parser.HTMLParser(),
        "json": json.dumps({"a": [1, 2, 3], "b": {"c": None}}),
    }


def build():
    live = exercise()

    # Garbage.
    for _ in range(20):
        xml.dom.minidom.parseString(XML)
    for i in range(10):
        dataclass_tree(3, 3, "g%d" % i)
    for _ in range(3):
        parented_ast(SOURCE)
    for i in range(50):
        items = [i]
        items.append(items)
        table = {"i": i}
        table["self"] = table
    ring = [{} for _ in range(5)]
    for i, d in enumerate(ring):
        d["next"] = ring[(i + 1) % len(ring)]
    del ring
    parser = argparse.ArgumentParser(prog="garbage")
    parser.add_argument("--flag", action="store_true")
    del parser
    caught_exception()
    gen = counting()
    next(gen)
    holder = [gen]
    holder.append(holder)
    del gen, holder
    Phoenix()

    # Live structures of the same kinds.
    live["tree"] = dataclass_tree(3, 2, "live")
    live["ast"] = parented_ast("def f(x):\n    return [y * 2 for y in x]\n")
    keep = [1, 2]
    keep.append(keep)
    live["cycle"] = keep
    live["weak"] = weakref.WeakValueDictionary({"tree": live["tree"]})
    live["resurrected"] = RESURRECTED
    return live
