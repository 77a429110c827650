#!/usr/bin/env python3
"""The shape of src/: no cycle between files, no function too long.

Reads the built objects (src/*.o, src/api/*.o) with nm: a file depends on
another when it calls a function (or reads a variable) the other defines.
Every cycle of such dependencies is reported, whatever its length.  Then
reads each .c file for function definitions (PostgreSQL layout: the name
at column 0, the body between a '{' and a '}' at column 0) and reports
those longer than the limit, counted from the name's line to the closing
brace.  Run after a build; prints "structure: N passed, M failed".

    test/structure.py [--max-lines 80] [--report]

--report prints the dependency graph and the longest functions too.
"""
import argparse
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")


def unit(path):
    return os.path.relpath(path, SRC)[:-2]


def symbols(obj, defined):
    args = ["nm", "--defined-only" if defined else "--undefined-only", obj]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if defined and len(parts) == 3 and parts[1] in "TDBR":
            names.add(parts[2])
        elif not defined and len(parts) == 2 and parts[0] == "U":
            names.add(parts[1])
    return names


def dependency_graph():
    objs = sorted(glob.glob(os.path.join(SRC, "*.o")) + glob.glob(os.path.join(SRC, "api", "*.o")))
    if not objs:
        sys.exit("structure: no objects in src/; build first")
    owner = {}
    for obj in objs:
        for name in symbols(obj, True):
            owner[name] = unit(obj)
    graph = {unit(obj): set() for obj in objs}
    for obj in objs:
        for name in symbols(obj, False):
            if name in owner and owner[name] != unit(obj):
                graph[unit(obj)].add(owner[name])
    return graph


def cycles(graph):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def function_lengths():
    lengths = []
    files = sorted(glob.glob(os.path.join(SRC, "*.c")) + glob.glob(os.path.join(SRC, "api", "*.c")))
    for path in files:
        lines = open(path, encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            if lines[i] == "{":
                j = i - 1
                while j >= 0 and not re.match(r"^[A-Za-z_]\w*\s*\(", lines[j]):
                    if lines[j] == "" or lines[j].startswith(("}", "*/", "#")):
                        j = -1
                        break
                    j -= 1
                k = i
                while k < len(lines) and lines[k] != "}":
                    k += 1
                if j >= 0:
                    name = re.match(r"^([A-Za-z_]\w*)", lines[j]).group(1)
                    lengths.append((k - j + 1, os.path.relpath(path, SRC), name))
                i = k
            i += 1
    return sorted(lengths, reverse=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()

    graph = dependency_graph()
    found_cycles = cycles(graph)
    lengths = function_lengths()
    too_long = [x for x in lengths if x[0] > args.max_lines]

    if args.report:
        for v in sorted(graph):
            print("%-22s -> %s" % (v, ", ".join(sorted(graph[v])) or "-"))
        print("longest functions:")
        for n, path, name in lengths[:10]:
            print("  %4d  %s %s" % (n, path, name))
    for component in found_cycles:
        print("cycle between files: " + ", ".join(component))
    for n, path, name in too_long:
        print("function longer than %d lines: %s %s (%d)" % (args.max_lines, path, name, n))
    failed = len(found_cycles) + len(too_long)
    print("structure: %d passed, %d failed" % (2 - min(len(found_cycles), 1) - min(len(too_long), 1),
                                               min(len(found_cycles), 1) + min(len(too_long), 1)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
