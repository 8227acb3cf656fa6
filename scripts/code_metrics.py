#!/usr/bin/env python3
"""Size checks of the library crates (docs/architecture.md, "Habits that keep it so"):

* no function over 80 lines in crates/annotator/src, crates/core/src and crates/report/src (test modules and
  `#[cfg(test)]` code excluded: a test may be long);
* with --modules, the line count of every library module (for the notes on a refactoring).

    python3 scripts/code_metrics.py              # check; exit 1 on a function over the limit
    python3 scripts/code_metrics.py --modules    # also list each module's lines
"""
import argparse
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LIBRARIES = ["crates/annotator/src", "crates/core/src", "crates/report/src"]
LIMIT = 80
FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def code_lines(path):
    """The file's lines with the contents of strings and comments blanked, so braces count."""
    text = open(path, encoding="utf-8").read()
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c == '"' or (c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not text[i - 1].isalnum())):
            m = re.match(r'r(#*)"', text[i:i + 10])
            if m:
                end = '"' + m.group(1)
                j = text.find(end, i + len(m.group(0)))
                j = n if j < 0 else j + len(end)
            else:
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                j += 1
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:i + 4])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out).split("\n")


def long_functions(path, limit):
    """(name, first line, lines) of every non-test function longer than `limit` lines."""
    lines = code_lines(path)
    found, depth, test_depth, pending_test = [], 0, None, False
    open_fns = []  # (name, start line, depth at which its body opened)
    for no, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("#[cfg(test)]") or stripped.startswith("#[test]"):
            pending_test = True
        m = FN.match(line)
        if m and test_depth is None and not pending_test:
            open_fns.append((m.group(1), no, None))
        for ch in line:
            if ch == "{":
                depth += 1
                if pending_test and test_depth is None:
                    test_depth, pending_test = depth, False
                if open_fns and open_fns[-1][2] is None:
                    open_fns[-1] = (open_fns[-1][0], open_fns[-1][1], depth)
            elif ch == "}":
                if open_fns and open_fns[-1][2] == depth:
                    name, start, _ = open_fns.pop()
                    if no - start + 1 > limit:
                        found.append((name, start, no - start + 1))
                if test_depth == depth:
                    test_depth = None
                depth -= 1
            elif ch == ";" and open_fns and open_fns[-1][2] is None:
                open_fns.pop()  # a declaration without a body
    return found


def rust_files(rel):
    for dirpath, _, files in os.walk(os.path.join(ROOT, rel)):
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(dirpath, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", action="store_true", help="list every library module's line count")
    args = ap.parse_args()
    bad = 0
    for rel in LIBRARIES:
        for path in sorted(rust_files(rel)):
            name = os.path.relpath(path, ROOT)
            if args.modules:
                print(f"{sum(1 for _ in open(path, encoding='utf-8')):6d} {name}")
            for fn, start, n in long_functions(path, LIMIT):
                print(f"{name}:{start}: fn {fn} has {n} lines (limit {LIMIT})")
                bad += 1
    if bad:
        return 1
    print(f"code metrics: no library function over {LIMIT} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
