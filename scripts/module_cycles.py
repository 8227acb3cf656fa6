#!/usr/bin/env python3
"""Finds import cycles between the modules of each library crate (docs/architecture.md, "Layers").

Two levels are checked in every crate under crates/:

* the crate's top-level modules (children of lib.rs): `error` may not use `topics` if `topics`
  uses `error`;
* the sibling submodules inside each top-level module directory (e.g. topics::calibration and
  topics::embedding), ignoring the parent's own mod.rs, which declares and re-exports them.

A dependency is any `crate::a::...` or `super::...` path in the code (in `use` lines, braces
included, or inline), comments excluded. Prints every cycle and exits 1 when there is one.

    python3 scripts/module_cycles.py            # check the workspace
    python3 scripts/module_cycles.py --graph    # also print the top-level edges
"""

import argparse
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments(code):
    """The code without // comments (doc comments included) and /* */ blocks; strings are kept."""
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return "\n".join(re.sub(r"//.*$", "", line) for line in code.splitlines())


def module_path(src, path):
    """Module path of a source file relative to the crate's src/: a/b.rs and a/b/mod.rs -> [a, b]."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return rel


def expand(prefix, body):
    """Paths named by a `prefix::{...}` group, one level of nesting deep enough for our use."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(body + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            item = body[start:i].strip()
            start = i + 1
            if not item:
                continue
            head = re.match(IDENT, item)
            if head:
                out.append(prefix + [head.group(0)])
    return out


def referenced_paths(code):
    """(kind, path) for every crate:: and super:: path; kind is 'crate' or the number of supers."""
    refs = []
    for m in re.finditer(r"\bcrate::((?:" + IDENT + r"::)*)(\{|" + IDENT + ")", code):
        parts = [p for p in m.group(1).split("::") if p]
        if m.group(2) == "{":
            body = code[m.end():]
            depth, end = 1, 0
            for end, ch in enumerate(body):
                depth += ch == "{"
                depth -= ch == "}"
                if depth == 0:
                    break
            refs += [("crate", p) for p in expand(parts, body[:end])]
        else:
            refs.append(("crate", parts + [m.group(2)]))
    for m in re.finditer(r"\b((?:super::)+)(\{|" + IDENT + ")", code):
        ups = m.group(1).count("super::")
        if m.group(2) == "{":
            body = code[m.end():]
            depth, end = 1, 0
            for end, ch in enumerate(body):
                depth += ch == "{"
                depth -= ch == "}"
                if depth == 0:
                    break
            refs += [(ups, p) for p in expand([], body[:end])]
        else:
            refs.append((ups, [m.group(2)]))
    return refs


def crate_modules(src):
    """{module path tuple: code} for every .rs file of a crate's src/."""
    modules = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(dirpath, f)
                with open(path, encoding="utf-8") as fh:
                    modules[tuple(module_path(src, path))] = strip_comments(fh.read())
    return modules


def is_dir_module(src, mod):
    return os.path.isfile(os.path.join(src, *mod, "mod.rs")) if mod else True


def edges(src, modules):
    """Set of (from, to) module-path edges, each target cut to an existing module."""
    out = set()
    for mod, code in modules.items():
        # super:: is relative to the module's parent (a file module) or to itself (mod.rs)
        for kind, path in referenced_paths(code):
            if kind == "crate":
                target = list(path)
            else:
                base = list(mod)
                for _ in range(kind):
                    base = base[:-1]
                target = base + list(path)
            while target and tuple(target) not in modules:
                target = target[:-1]
            if tuple(target) != mod:
                out.add((mod, tuple(target)))
    return out


def cycles(nodes, graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                result.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


def level_graph(all_edges, parent):
    """Edges between the children of `parent` (module path tuple), each end cut to a child."""
    depth = len(parent) + 1
    graph, nodes = {}, set()
    for a, b in all_edges:
        if len(a) < depth or len(b) < depth or a[:len(parent)] != parent or b[:len(parent)] != parent:
            continue
        ca, cb = a[:depth], b[:depth]
        nodes.update([ca, cb])
        if ca != cb:
            graph.setdefault(ca, set()).add(cb)
    return nodes, graph


def check_crate(src, show_graph):
    modules = crate_modules(src)
    all_edges = edges(src, modules)
    found = []
    parents = [()] + [m for m in modules if len(m) == 1 and is_dir_module(src, m)]
    for parent in parents:
        nodes, graph = level_graph(all_edges, parent)
        if show_graph and parent == ():
            for a in sorted(graph):
                print(f"  {'::'.join(a)} -> {', '.join('::'.join(b) for b in sorted(graph[a]))}")
        for comp in cycles(nodes, graph):
            found.append(" <-> ".join("::".join(c) for c in comp))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", action="store_true", help="print each crate's top-level edges")
    args = ap.parse_args()
    crates_dir = os.path.join(ROOT, "crates")
    bad = 0
    for name in sorted(os.listdir(crates_dir)):
        src = os.path.join(crates_dir, name, "src")
        if not os.path.isfile(os.path.join(src, "lib.rs")):
            continue
        if args.graph:
            print(f"{name}:")
        found = check_crate(src, args.graph)
        for cycle in found:
            print(f"module cycle in crates/{name}: {cycle}")
        bad += len(found)
    if bad:
        return 1
    print("module cycles: none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
