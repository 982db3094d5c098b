"""The heapgraph exporter: a CPython 3.11 heap and the cycle collector's verdict, as a file.

Run it through its launcher: ``python3 export_heapgraph.py [--lean] WORKLOAD.py OUT.jsonl``.

WORKLOAD.py defines ``build()``. The exporter runs it, keeps what it returns, and writes the
whole heap of the process (every object the collector tracks, closed under
``gc.get_referents``), every reference count accounted for, and the set of objects that
CPython's own full collection then finds unreachable. The format is
``shared/heapgraph-format.md`` (version 1); this program follows its section 7 step by step,
and the step numbers below are that section's.

``--lean`` loads the workload the way ``runpy.run_path`` does for a plain ``.py`` file, without
importing ``runpy`` (which brings about 4,500 objects of ``importlib.util``, ``contextlib`` and
``pkgutil`` into the heap). With ``python3 -I -S`` it gives the smallest files, used for the test
captures. Without it the workload runs through ``runpy.run_path`` as section 7 describes.

The measurement must not disturb what it measures. Hence the rules every function here keeps:

* After the snapshot no module, class, cache entry or global is created or changed: only
  plain data of the exporter's own (bytearrays, memoryviews, lists of long strings, dicts of
  ints), which are not objects of the file.
* No exporter table holds an object of the file. Object ids are kept as ``id + 2**40`` so that
  no table holds one of the cached small ints (those are objects of the file too); counts live
  in bytearrays.
* No attribute of an object of the file is read (3.11 materialises an instance's dict on
  ``o.__dict__``, a metaclass may run Python code): type facts come from ``type``'s own
  descriptors, and ``sys.getsizeof`` is not called when a class defines ``__sizeof__`` in Python.
* Reference counts are read in ``main`` itself (a helper's function object would be on the
  stack), with no comprehension or closure, and every call goes through a
  ``functools.partial`` made right after the snapshot, so that no object of the file sits on the
  value stack while a count is read.

Two choices go beyond section 7's text. One full collection runs before the workload is
loaded: it untracks the constant tuples of the exporter's freshly compiled code (some 1,000
objects a small file would otherwise carry) and frees what interpreter start-up left in cycles,
so the garbage in the file is the workload's alone. And the launcher, export_heapgraph.py, is
a separate tiny file (its docstring says why).

Only the standard library's built-in modules are used (``gc``, ``sys``, ``posix``, ``time``,
``_functools``, ``_ctypes``), so the exporter adds a few hundred objects to the heap it exports.
"""

import gc

gc.disable()  # step 1 (the launcher did it already; importing this module alone does it too)

import sys  # noqa: E402
import posix  # noqa: E402
import time  # noqa: E402
from _functools import partial  # noqa: E402

PRODUCER = "export_heapgraph (pyheap) 1.0"
GARBAGE_FROM_FORK = "DEBUG_COLLECTABLE+DEBUG_UNCOLLECTABLE in a forked copy"
GARBAGE_FROM_SAVEALL = "DEBUG_SAVEALL"

# Ids and addresses in exporter tables are offset by BIG: never a cached small int.
BIG = 1 << 40
I64_MIN = -(1 << 63)
I64_END = 1 << 63
STATIC_REFCOUNT = 999999999  # 3.11 statically allocated objects start here
GC_HEAD_SIZE = 16
MADV_POPULATE_WRITE = 23  # Linux 5.14
LIVE_REPEATS = 5

# Type flags (Include/object.h, 3.11).
TPFLAGS_IMMUTABLETYPE = 1 << 8
TPFLAGS_HEAPTYPE = 1 << 9
TPFLAGS_HAVE_GC = 1 << 14
TPFLAGS_TYPE_SUBCLASS = 1 << 31

# Section 3.3: kinds by exact type.
KIND_BY_TYPE = {
    int: "int",
    bool: "int",
    float: "float",
    str: "str",
    bytes: "bytes",
    tuple: "tuple",
    list: "list",
    dict: "dict",
    set: "set",
    frozenset: "set",
}
LEN_KINDS = ("str", "bytes", "tuple", "list", "dict", "set")

# Type facts through type's own descriptors: no attribute lookup on the object of the file.
type_name = type.__dict__["__name__"].__get__
type_flags = type.__dict__["__flags__"].__get__
type_mro = type.__dict__["__mro__"].__get__
type_dict = type.__dict__["__dict__"].__get__
object_sizeof = object.__sizeof__
# What a class dict holds when __sizeof__ is implemented in C.
C_DESCRIPTORS = (
    type(object.__sizeof__),  # method_descriptor
    type(object.__init__),  # wrapper_descriptor
    type(len),  # builtin_function_or_method
    type(dict.__dict__["fromkeys"]),  # classmethod_descriptor
)
MISSING = object()


class ExportError(Exception):
    """A condition under which no faithful file can be written."""


# --- foreign functions -------------------------------------------------------------------------
#
# Built on _ctypes directly (ctypes/__init__.py would add ~1,500 objects and import os). Every
# class here is made at import time: after the snapshot no class may be created (a new class
# changes its bases' subclass tables, which are objects of the file).

try:
    import _ctypes

    class VoidP(_ctypes._SimpleCData):
        """C ``void *``."""

        _type_ = "P"

    class SizeT(_ctypes._SimpleCData):
        """C ``size_t`` (``unsigned long`` on LP64)."""

        _type_ = "L"

    class CInt(_ctypes._SimpleCData):
        """C ``int``."""

        _type_ = "i"

    def _foreign(address, restype, argtypes):
        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = restype
            _argtypes_ = argtypes

        return Function(address)

    if _ctypes.sizeof(SizeT) != _ctypes.sizeof(VoidP):
        raise ImportError("size_t is not unsigned long here")
    _libc = _ctypes.dlopen(None)
    memmove = _foreign(_ctypes._memmove_addr, None, (VoidP, VoidP, SizeT))
    libc_fork = _foreign(_ctypes.dlsym(_libc, "fork"), CInt, ())
    libc_madvise = _foreign(_ctypes.dlsym(_libc, "madvise"), CInt, (VoidP, SizeT, CInt))
    HAVE_CTYPES = True
except (ImportError, AttributeError, OSError):  # pragma: no cover - exotic builds
    HAVE_CTYPES = False


# --- small helpers (all run outside the measured instants) -------------------------------------


def json_str(text):
    """A JSON string literal (UTF-8 output; lone surrogates become U+FFFD)."""
    out = ['"']
    for ch in text:
        c = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif c < 0x20:
            out.append("\\u%04x" % c)
        elif 0xD800 <= c < 0xE000:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def json_value(value):
    """JSON text of the trailer's plain values: None, bool, int, str, list, dict."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return "%d" % value
    if type(value) is str:
        return json_str(value)
    if type(value) is list:
        parts = []
        for item in value:
            parts.append(json_value(item))
        return "[" + ",".join(parts) + "]"
    if type(value) is dict:
        parts = []
        for key, item in value.items():
            parts.append(json_str(key) + ":" + json_value(item))
        return "{" + ",".join(parts) + "}"
    raise TypeError("no JSON form for %r" % (value,))


def new_table(n, code):
    """A zeroed table of n machine values (struct codes "q", "Q" or "B") over a bytearray."""
    return memoryview(bytearray(8 * n if code in "qQ" else n)).cast(code)


def run_workload_lean(path, run_name):
    """What runpy.run_path does for a plain .py file, without importing runpy.

    The source is executed with exec() rather than compiled with compile(), whose first call
    creates the ~110 classes of the ast module (tracebacks name the workload "<string>")."""
    with open(path, "rb") as f:
        source = f.read().decode("utf-8")
    module = type(sys)(run_name)
    namespace = module.__dict__
    namespace.update(
        __file__=path, __cached__=None, __loader__=None, __package__="", __spec__=None
    )
    old_module = sys.modules.get(run_name, MISSING)
    old_argv0 = sys.argv[0] if sys.argv else MISSING
    sys.modules[run_name] = module
    if sys.argv:
        sys.argv[0] = path
    try:
        exec(source, namespace)
    finally:
        if old_module is MISSING:
            del sys.modules[run_name]
        else:
            sys.modules[run_name] = old_module
        if old_argv0 is not MISSING:
            sys.argv[0] = old_argv0
    return namespace.copy()


def run_workload(path, lean):
    """Step 1: run the workload and its build(); returns (globals copy, build()'s value)."""
    run_name = "heapgraph_workload"
    if lean:
        namespace = run_workload_lean(path, run_name)
    else:
        import runpy

        namespace = runpy.run_path(path, run_name=run_name)
    build = namespace.get("build")
    if build is None:
        raise ExportError("%s defines no build()" % path)
    return namespace, build()


def snapshot():
    """Step 2: gc.get_objects() closed under gc.get_referents.

    Returns the list of objects (id order) and a dict address -> id + BIG."""
    nodes = gc.get_objects()
    index = {}
    next_id = BIG
    for o in nodes:
        index[id(o)] = next_id
        next_id += 1
    referents = gc.get_referents
    position = 0
    while position < len(nodes):
        for r in referents(nodes[position]):
            key = id(r)
            if key not in index:
                index[key] = next_id
                next_id += 1
                nodes.append(r)
        position += 1
    return nodes, index


def type_facts(t):
    """(JSON name, kind, sizeof implemented in C, GC type) of a type, read without lookups."""
    flags = type_flags(t)
    kind = KIND_BY_TYPE.get(t)
    if kind is None:
        is_instance = (
            flags & TPFLAGS_HEAPTYPE
            and not flags & TPFLAGS_IMMUTABLETYPE
            and not flags & TPFLAGS_TYPE_SUBCLASS
        )
        kind = "instance" if is_instance else "other"
    sizeof_in_c = False
    try:
        for cls in type_mro(t) or ():
            found = type_dict(cls).get("__sizeof__", MISSING)
            if found is not MISSING:
                sizeof_in_c = type(found) in C_DESCRIPTORS
                break
    except TypeError:  # a metaclass's mro() put a non-class in __mro__
        sizeof_in_c = False
    return json_str(type_name(t)), kind, sizeof_in_c, bool(flags & TPFLAGS_HAVE_GC)


def describe(nodes, index, indegree, tracked, ref_hash):
    """Step 4: everything of each object line but `external`.

    Fills indegree, tracked and ref_hash; returns (heads, tails, stats). The line of object i is
    heads[i] + external + tails[i]."""
    referents = gc.get_referents
    is_tracked = gc.is_tracked
    getsizeof = sys.getsizeof
    facts_by_type = {}
    heads = []
    tails = []
    edges = missing = untracked_to_tracked = sizeof_skipped = 0
    k = 0
    for o in nodes:
        t = type(o)
        facts = facts_by_type.get(id(t))
        if facts is None:
            facts = type_facts(t)
            facts_by_type[id(t)] = facts
        name, kind, sizeof_in_c, is_gc = facts
        size = -1
        if sizeof_in_c:
            try:
                size = getsizeof(o)
            except Exception:
                size = -1
        if size < 0:
            sizeof_skipped += 1
            size = object_sizeof(o) + (GC_HEAD_SIZE if is_gc else 0)
        extra = ""
        if kind == "int":
            if I64_MIN <= o < I64_END:
                extra = ',"value":%d' % o
        elif kind == "float":
            if o - o == 0.0:  # finite
                extra = ',"value":' + repr(o)
        elif kind in LEN_KINDS:
            extra = ',"len":%d' % len(o)
        own_tracked = is_tracked(o)
        tracked[k] = own_tracked
        parts = []
        for r in referents(o):
            j = index.get(id(r))
            if j is None:
                missing += 1
                continue
            j -= BIG
            parts.append("%d" % j)
            indegree[j] += 1
            if not own_tracked and is_tracked(r):
                untracked_to_tracked += 1
        edges += len(parts)
        refs = ",".join(parts)
        ref_hash[k] = hash(refs)
        heads.append(
            '{"id":%d,"type":%s,"kind":"%s","size":%d,"refs":[%s],"external":'
            % (k, name, kind, size, refs)
        )
        tails.append(',"tracked":%s%s}\n' % ("true" if own_tracked else "false", extra))
        k += 1
    stats = {
        "edges": edges,
        "missing_edges": missing,
        "untracked_to_tracked": untracked_to_tracked,
        "python_sizeof_skipped": sizeof_skipped,
    }
    return heads, tails, stats


def edge_drift(nodes, index, ref_hash):
    """Step 4, second half: read every object's referents again; count the objects that changed."""
    referents = gc.get_referents
    drift = 0
    k = 0
    for o in nodes:
        parts = []
        for r in referents(o):
            j = index.get(id(r))
            if j is not None:
                parts.append("%d" % (j - BIG))
        if hash(",".join(parts)) != ref_hash[k]:
            drift += 1
        k += 1
    return drift


def scratch_fd(tag):
    """An anonymous read-write file for the child's reports."""
    if hasattr(posix, "memfd_create"):
        return posix.memfd_create("heapgraph-" + tag)
    path = "/tmp/heapgraph-%d-%s" % (posix.getpid(), tag)
    fd = posix.open(path, posix.O_RDWR | posix.O_CREAT | posix.O_EXCL, 0o600)
    posix.unlink(path)
    return fd


def read_fd(fd):
    """Everything written to a scratch file."""
    posix.lseek(fd, 0, 0)
    chunks = []
    while True:
        chunk = posix.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]


def child_collect(err_fd, saved_fd, garbage_start):
    """Step 5, in the forked child: the same full collection, with every unreachable object
    reported on stderr (redirected to err_fd) before any finalizer runs. Never returns."""
    code = 3
    try:
        posix.dup2(err_fd, 2)
        gc.set_debug(gc.DEBUG_COLLECTABLE | gc.DEBUG_UNCOLLECTABLE | gc.DEBUG_SAVEALL)
        gc.collect()
        gc.set_debug(0)
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = ["%x" % id(g) for g in gc.garbage[garbage_start:]]
        write_all(saved_fd, "\n".join(saved).encode())
        code = 0
    finally:
        posix._exit(code)


def parse_child(err_fd, saved_fd):
    """The child's unreachable set (from its `gc: collectable <T 0x...>` lines) and its
    gc.garbage, as lists of addresses."""
    unreachable = []
    for line in read_fd(err_fd).split(b"\n"):
        if line.startswith((b"gc: collectable <", b"gc: uncollectable <")) and line.endswith(b">"):
            unreachable.append(int(line[:-1].rpartition(b" ")[2], 16))
    saved = []
    for line in read_fd(saved_fd).split():
        saved.append(int(line, 16))
    return unreachable, saved


def prefault_writable():
    """Make copy-on-write pages writable again after the child exited, so that page faults do
    not land in the timed collection. Returns the number of regions madvise refused."""
    with open("/proc/self/maps", "rb") as f:
        maps = f.read()
    failed = 0
    for line in maps.split(b"\n"):
        fields = line.split()
        if len(fields) < 2 or fields[1] != b"rw-p":
            continue
        start, _, end = fields[0].partition(b"-")
        start = int(start, 16)
        length = int(end, 16) - start
        if length > 1 << 30:
            continue  # a large reservation, not the heap: populating it would commit it all
        if libc_madvise(start, length, MADV_POPULATE_WRITE) != 0:
            failed += 1
    return failed


def fork_child(err_fd, saved_fd, garbage_start):
    """Forks (libc's fork: no Python at-fork handler runs). Returns the child's pid in the
    parent, or -1 when fork is unavailable; the child never returns."""
    if not HAVE_CTYPES:
        return -1
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    pid = libc_fork()
    if pid == 0:
        child_collect(err_fd, saved_fd, garbage_start)
    return pid


def write_file(path, header, heads, tails, counts, indegree, trailer):
    """Writes the file: object i's external is its count minus its in-degree, clamped at 0."""
    with open(path, "wb") as out:
        out.write((json_value(header) + "\n").encode())
        chunk = []
        for i in range(len(heads)):
            external = counts[i] - indegree[i]
            chunk.append(heads[i])
            chunk.append("%d" % (external if external > 0 else 0))
            chunk.append(tails[i])
            if len(chunk) >= 3000:
                out.write("".join(chunk).encode())
                chunk = []
        out.write("".join(chunk).encode())
        out.write((json_value(trailer) + "\n").encode())


def usage():
    sys.stderr.write("usage: python3 export_heapgraph.py [--lean] WORKLOAD.py OUT.jsonl\n")
    return 2


def main(argv):
    """Steps 1 to 7. Counts are read here, in this frame, and nowhere else."""
    args = argv[1:]
    lean = "--lean" in args
    if lean:
        args.remove("--lean")
    if len(args) != 2 or args[0].startswith("-"):
        return usage()
    workload_path, out_path = args
    if sys.version_info[:2] != (3, 11):
        raise ExportError("heapgraph version 1 describes CPython 3.11 heaps, not %s" % sys.version)
    if gc.get_freeze_count() > 0:
        raise ExportError("frozen objects (gc.freeze) are outside the collector's view")
    started = time.perf_counter()

    # Step 1. One collection first settles the exporter's own objects: it untracks the constant
    # tuples of its freshly compiled code (some 1,000 objects a small file would carry) and
    # frees what interpreter start-up left in cycles, so the garbage found is the workload's.
    gc.collect()
    ns, keep = run_workload(workload_path, lean)
    garbage_start = len(gc.garbage)

    # Step 2: the snapshot, then every helper kept to the end, before any count is read.
    nodes, index = snapshot()
    n = len(nodes)
    addresses = new_table(n, "Q")
    before = new_table(n, "q")
    read_a = new_table(n, "q")
    read_b = new_table(n, "q")
    indegree = new_table(n, "q")
    ref_hash = new_table(n, "q")
    tracked = new_table(n, "B")
    getrefcount = partial(sys.getrefcount)
    now = partial(time.perf_counter_ns)
    collect = partial(gc.collect)
    err_fd = scratch_fd("stderr")
    saved_fd = scratch_fd("saved")
    if HAVE_CTYPES:
        src = VoidP()
        dst = VoidP()
        word = SizeT(8)
        read_word = partial(memmove, dst, src, word)
        read_a_at = _ctypes.addressof(SizeT.from_buffer(read_a))
        read_b_at = _ctypes.addressof(SizeT.from_buffer(read_b))
    k = 0
    for o in nodes:
        addresses[k] = id(o)
        k += 1
    del o

    # Step 3: sys.getrefcount minus the snapshot list, the loop variable and the argument slot.
    k = BIG
    for o in nodes:
        before[k - BIG] = getrefcount(o) - 3
        k += 1
    del o

    # Step 4.
    heads, tails, stats = describe(nodes, index, indegree, tracked, ref_hash)
    drift = edge_drift(nodes, index, ref_hash)

    # Step 5: drop the snapshot (frees nothing: every object has another owner), fork.
    del nodes
    min_own_refs = min(before) if n else 0
    pid = fork_child(err_fd, saved_fd, garbage_start)
    child_ok = False
    unreachable_addresses = child_saved = []
    if pid > 0:
        _, status = posix.waitpid(pid, 0)
        child_ok = status == 0
        if child_ok:
            unreachable_addresses, child_saved = parse_child(err_fd, saved_fd)
    prefault_failed = prefault_writable() if HAVE_CTYPES else 0
    gc.set_debug(gc.DEBUG_SAVEALL)

    # Step 6: ob_refcnt of every object, read twice from memory, no object of the file on the
    # stack. From here to the collection, nothing but partials is called.
    if HAVE_CTYPES:
        counts = read_b
        refcount_source = "ob_refcnt"
        a = at = read_a_at
        for a in addresses:
            src.value = a
            dst.value = at
            read_word()
            at += 8
        at = read_b_at
        for a in addresses:
            src.value = a
            dst.value = at
            read_word()
            at += 8
    else:
        counts = before
        refcount_source = "getrefcount"

    # Step 7: the measured collection.
    t0 = now()
    collected = collect()
    collect_ns = now() - t0

    gc.set_debug(0)
    saved_addresses, unmapped_types = map_saved(index, garbage_start)
    del gc.garbage[garbage_start:]
    t0 = now()
    freed = collect()
    free_collect_ns = now() - t0
    t0 = now()
    live_collected = collect()
    live_collect_ns = now() - t0
    repeats = []
    for _ in range(LIVE_REPEATS):
        t0 = now()
        collect()
        repeats.append(now() - t0)

    verdict = {
        "child_ok": child_ok,
        "unreachable": unreachable_addresses,
        "child_saved": child_saved,
        "saved": saved_addresses,
        "unmapped_types": unmapped_types,
        "collected": collected,
        "collect_ns": collect_ns,
        "free_collect_ns": free_collect_ns,
        "freed": freed,
        "live_collect_ns": live_collect_ns,
        "live_collected": live_collected,
        "live_collect_ns_repeats": repeats,
    }
    checks = {
        "refcounts": refcount_source,
        "edge_drift": drift,
        "prefault_failed_regions": prefault_failed,
        "min_own_refs": min_own_refs,
    }
    tables = (index, counts, before, read_a if HAVE_CTYPES else before, read_b, indegree, tracked)
    header, trailer = summarise(workload_path, lean, tables, stats, verdict, checks)
    write_file(out_path, header, heads, tails, tables[1], tables[5], trailer)
    posix.close(err_fd)
    posix.close(saved_fd)
    verify = trailer["verify"]
    sys.stderr.write(
        "export_heapgraph: %s: %d objects, %d edges, %d garbage (%s), collect %.1f ms, %.1f s\n"
        % (
            out_path,
            n,
            header["edges"],
            len(trailer["garbage"]),
            trailer["garbage_source"],
            collect_ns / 1e6,
            time.perf_counter() - started,
        )
    )
    failed = (
        verify["edge_drift"]
        or verify["missing_edges"]
        or verify["getrefcount_mismatch_tracked"]
        or verify["clamped_tracked"]
        or verify["reread_mismatch"]
        or not verify["fork_consistent"]
    )
    if failed:
        sys.stderr.write("export_heapgraph: warning: self-checks failed: %s\n" % json_value(verify))
    del ns, keep
    return 0


def map_saved(index, garbage_start):
    """After the measured collection: the addresses of gc.garbage's new objects that are in the
    file, and a histogram by type name of those that are not (born after the snapshot)."""
    saved = []
    unmapped_types = {}
    for g in gc.garbage[garbage_start:]:
        if id(g) in index:
            saved.append(id(g))
        else:
            name = type(g).__name__
            unmapped_types[name] = unmapped_types.get(name, 0) + 1
    return saved, unmapped_types


def summarise(workload_path, lean, tables, stats, verdict, checks):
    """The header and the trailer, from the tables and what the collections reported."""
    index, counts, before, read_a, read_b, indegree, tracked = tables
    n = len(counts)
    saved_ids = sorted(index[a] - BIG for a in verdict["saved"])
    unreachable = verdict["unreachable"]
    if verdict["child_ok"]:
        source = GARBAGE_FROM_FORK
        garbage = sorted(set(index[a] - BIG for a in unreachable if a in index))
        unmapped_unreachable = sum(1 for a in unreachable if a not in index)
        child_saved = set(a for a in verdict["child_saved"] if a in index)
        fork_consistent = child_saved == set(verdict["saved"])
    else:
        source = GARBAGE_FROM_SAVEALL
        garbage = saved_ids
        unmapped_unreachable = 0
        fork_consistent = False
    garbage_set = set(garbage)
    saved_set = set(saved_ids)
    unmapped_garbage = sum(verdict["unmapped_types"].values())

    clamped = clamped_tracked = externally_held = tracked_count = static_objects = 0
    reread_mismatch = mismatch_tracked = mismatch_untracked = 0
    for i in range(n):
        count = counts[i]
        if count < indegree[i]:
            clamped += 1
            clamped_tracked += tracked[i]
        externally_held += count > indegree[i]
        tracked_count += tracked[i]
        static_objects += count >= STATIC_REFCOUNT
        reread_mismatch += read_a[i] != read_b[i]
        if before[i] != count:
            if tracked[i]:
                mismatch_tracked += 1
            else:
                mismatch_untracked += 1

    header = {
        "format": "heapgraph",
        "version": 1,
        "producer": PRODUCER,
        "python": sys.version.split()[0],
        "workload": workload_path.rpartition("/")[2],
        "objects": n,
        "edges": stats["edges"],
        "tracked": tracked_count,
        "externally_held": externally_held,
        "clamped": clamped,
        "untracked_to_tracked": stats["untracked_to_tracked"],
        "loader": "lean" if lean else "runpy.run_path",
    }
    verify = {
        "refcounts": checks["refcounts"],
        "reread_mismatch": reread_mismatch,
        "getrefcount_mismatch_tracked": mismatch_tracked,
        "getrefcount_mismatch_untracked": mismatch_untracked,
        "edge_drift": checks["edge_drift"],
        "missing_edges": stats["missing_edges"],
        "fork_consistent": fork_consistent,
        "clamped_tracked": clamped_tracked,
        "untracked_to_tracked_edges": stats["untracked_to_tracked"],
        "static_objects": static_objects,
        "python_sizeof_skipped": stats["python_sizeof_skipped"],
        "prefault_failed_regions": checks["prefault_failed_regions"],
        "min_own_refs": checks["min_own_refs"],
    }
    trailer = {
        "trailer": True,
        "garbage": garbage,
        "garbage_source": source,
        "collected": verdict["collected"],
        "saved": len(saved_ids) + unmapped_garbage,
        "not_saved": sorted(garbage_set - saved_set),
        "saved_not_garbage": sorted(saved_set - garbage_set),
        "collect_ns": verdict["collect_ns"],
        "free_collect_ns": verdict["free_collect_ns"],
        "freed": verdict["freed"],
        "live_collect_ns": verdict["live_collect_ns"],
        "live_collected": verdict["live_collected"],
        "live_collect_ns_repeats": verdict["live_collect_ns_repeats"],
        "unmapped_garbage": unmapped_garbage,
        "unmapped_types": verdict["unmapped_types"],
        "unmapped_unreachable": unmapped_unreachable,
        "verify": verify,
    }
    return header, trailer


def cli(argv):
    """The command line: returns the exit status."""
    try:
        return main(argv)
    except ExportError as e:
        sys.stderr.write("export_heapgraph: %s\n" % e)
        return 2
