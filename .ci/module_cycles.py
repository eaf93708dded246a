#!/usr/bin/env python3
"""Fails when the top-level modules of a Rust crate import each other in a cycle.

Reads every `.rs` file under the crate's `src/` folder, takes each path a file names
through `crate::...` or `super::...` (in `use` lines and inline paths alike, test code
included), and maps it to the top-level module it lands in (`src/runtime/calls.rs`
belongs to `runtime`). Edges inside one top-level module are ignored. Prints the layers
(each module after everything it imports) or the cycle it found.

    python3 .ci/module_cycles.py host/src          # check a crate
    python3 .ci/module_cycles.py --self-test       # check the checker
"""

import os
import re
import sys
import tempfile

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_START = re.compile(r"\b(crate|super)((?:::super)*)::(\{|" + IDENT + ")")


def module_path(src, file):
    """`src/a/b.rs` -> ["a", "b"]; `src/a/mod.rs` -> ["a"]; `src/lib.rs` -> []."""
    rel = os.path.relpath(file, src)[:-3].split(os.sep)
    if rel[-1] == "mod" or (len(rel) == 1 and rel[0] in ("lib", "main")):
        rel = rel[:-1]
    return rel


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def group_heads(text, start):
    """First identifiers of the items of the `{...}` group opening at `start`."""
    depth, item, heads = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        if depth == 1 and ch == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    heads.append(item)
    out = []
    for h in heads:
        m = re.match(r"\s*(" + IDENT + ")", h)
        if m and m.group(1) not in ("self",):
            out.append(m.group(1))
    return out


def imports(src, file, text):
    """Top-level modules that `file` names."""
    here = module_path(src, file)
    found = set()
    for m in PATH_START.finditer(text):
        root, supers, head = m.group(1), m.group(2), m.group(3)
        if root == "crate":
            base = []
        else:
            # In `a/b.rs` (module a::b) `super` is `a`; in `a/mod.rs` (module a) it is the root.
            ups = 1 + supers.count("super")
            base = here[:-ups] if ups <= len(here) else []
        heads = group_heads(text, m.end(3) - 1) if head == "{" else [head]
        for h in heads:
            target = (base + [h])[0]
            found.add(target)
    return found


def graph(src):
    top = set()
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if os.path.isdir(path):
            top.add(entry)
        elif entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            top.add(entry[:-3])
    edges = {m: set() for m in top}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            file = os.path.join(dirpath, name)
            here = module_path(src, file)
            if not here:
                continue  # lib.rs / main.rs only declare modules
            with open(file, encoding="utf-8") as f:
                text = strip_comments(f.read())
            for target in imports(src, file, text):
                if target in top and target != here[0]:
                    edges[here[0]].add(target)
    return edges


def find_cycle(edges):
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def layers(edges):
    done, out = set(), []
    while len(done) < len(edges):
        layer = sorted(m for m in edges if m not in done and edges[m] <= done)
        out.append(layer)
        done |= set(layer)
    return out


def check(src, quiet=False):
    edges = graph(src)
    cycle = find_cycle(edges)
    if cycle:
        if quiet:
            return False
        print(f"import cycle between modules of {src}: " + " -> ".join(cycle), file=sys.stderr)
        for a, b in zip(cycle, cycle[1:]):
            print(f"  {a} imports {b}", file=sys.stderr)
        return False
    if not quiet:
        print(f"{src}: no import cycle between its {len(edges)} top-level modules; layers, lowest first:")
        for i, layer in enumerate(layers(edges)):
            print(f"  {i}: {' '.join(layer)}")
    return True


def self_test():
    def tree(files):
        root = tempfile.mkdtemp()
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        return root

    acyclic = tree({
        "lib.rs": "pub mod a; pub mod b; pub mod c;",
        "a/mod.rs": "mod x; use super::b::Thing; // use crate::c;",
        "a/x.rs": "use super::y; use crate::{b::{One, Two}, a::z};",
        "b.rs": "/* use crate::a; */ fn f() { crate::c::go(); }",
        "c.rs": "",
    })
    cyclic_use = tree({"lib.rs": "", "a.rs": "use crate::b::X;", "b/mod.rs": "mod y;", "b/y.rs": "use super::super::a::Y;"})
    cyclic_group = tree({"lib.rs": "", "a.rs": "use crate::{c, b::X};", "b.rs": "fn f() { crate::a::g() }", "c.rs": ""})
    results = [check(acyclic, quiet=True), not check(cyclic_use, quiet=True), not check(cyclic_group, quiet=True)]
    if not all(results):
        print(f"self-test failed: {results}", file=sys.stderr)
        return False
    print("module_cycles self-test: ok")
    return True


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(0 if self_test() else 1)
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if check(sys.argv[1]) else 1)
