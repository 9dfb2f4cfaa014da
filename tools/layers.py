#!/usr/bin/env python3
"""The tree's layers and import circles, from the built objects (make first).

A file depends on another when it uses a symbol the other defines (nm of each object).
Prints each folder's dependencies on other folders, any dependency that goes upward
(a lower layer using a higher one), and the circles: groups of files that depend on
each other (strongly connected components of more than one file).

  /usr/bin/python3 tools/layers.py [build/rel/obj]
"""
import os
import subprocess
import sys

LAYERS = ["runtime/core", "runtime/ops", "runtime/nn", "runtime/io", "runtime/loop", "runtime/lua", "runtime"]


def layer_of(src):
    folder = os.path.dirname(src)
    best = ""
    for layer in LAYERS:
        if (folder == layer or folder.startswith(layer + "/")) and len(layer) > len(best):
            best = layer
    return best


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRVWiu":
            defined.add(parts[2])
    return defined, used


def sccs(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    objdir = sys.argv[1] if len(sys.argv) > 1 else "build/rel/obj"
    files = {}
    for root, _, names in os.walk(objdir):
        for name in names:
            if name.endswith(".o"):
                obj = os.path.join(root, name)
                src = os.path.relpath(obj, objdir)[:-2] + ".c"
                if src.startswith("runtime/") and os.path.exists(src):
                    files[src] = symbols(obj)
    owner = {}
    for src, (defined, _) in files.items():
        for s in defined:
            owner.setdefault(s, src)
    graph = {src: set() for src in files}
    for src, (_, used) in files.items():
        for s in used:
            if s in owner and owner[s] != src:
                graph[src].add(owner[s])
    folders = {}
    upward = []
    for src, deps in graph.items():
        for d in deps:
            a, b = layer_of(src), layer_of(d)
            if a != b:
                folders.setdefault(a, set()).add(b)
                if LAYERS.index(b) > LAYERS.index(a):
                    upward.append((src, d))
    print("layers (each uses only those listed):")
    for layer in LAYERS:
        print("  %-14s -> %s" % (layer, ", ".join(sorted(folders.get(layer, []), key=LAYERS.index)) or "-"))
    print("upward dependencies: %s" % (", ".join("%s -> %s" % p for p in sorted(upward)) or "none"))
    circles = [c for c in sccs(graph) if len(c) > 1]
    print("import circles: %d" % len(circles))
    for c in sorted(circles):
        print("  " + " <-> ".join(c))


if __name__ == "__main__":
    main()
