#!/usr/bin/env python3
"""The shape rules `make lint` checks over the Rust sources, beside rustfmt and clippy.

1. Every source file starts with its `//!` line saying what it is for.
2. No non-test function is longer than 100 lines (signature to closing brace).

Test code is exempt from rule 2: files under a `tests/` directory, `#[cfg(test)]` items and
`#[test]` functions. Usage:

    scripts/lint-shape.py [--max-lines N] [PATH ...]    # default: every tracked *.rs file

Prints one line per finding (`file:line: what`) and exits 1 when there is any, 0 otherwise.
"""

import argparse
import os
import re
import subprocess
import sys

MAX_LINES = 100
FN_START = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def blank_out(src):
    """The source with comments, strings and char literals replaced by spaces (newlines
    kept), so that braces and `fn` are only found in code."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        nxt = src[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', src[i:]) and not (i and (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", src[i:]).group(1)
            end = src.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '{') or a lifetime ('a, 'static).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", src[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def test_spans(code):
    """Character spans of test-only items: `#[cfg(test)]` items and `#[test]` functions."""
    spans = []
    for m in re.finditer(r"#\[\s*(cfg\s*\(\s*test\s*\)|test|tokio::test[^\]]*)\s*\]", code):
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue  # `#[cfg(test)] use …;` and the like: nothing to span
        spans.append((m.start(), matching_brace(code, brace)))
    return spans


def long_functions(code, max_lines):
    spans = test_spans(code)
    for m in FN_START.finditer(code):
        if any(a <= m.start() <= b for a, b in spans):
            continue
        # The body opens at the first `{` after the signature, unless a `;` comes first
        # (a trait method without a body, `fn` in a type like `fn(u8) -> u8`).
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue
        end = matching_brace(code, brace)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        if last - first + 1 > max_lines:
            yield first, m.group(1), last - first + 1


def is_test_file(path):
    return "tests" in path.split(os.sep)[:-1]


def check(path, max_lines):
    findings = []
    with open(path, encoding="utf-8") as f:
        src = f.read()
    first_code = next((l for l in src.splitlines() if l.strip()), "")
    if not first_code.startswith("//!"):
        findings.append(f"{path}:1: no `//!` line saying what the file is for")
    if not is_test_file(path):
        for line, name, length in long_functions(blank_out(src), max_lines):
            findings.append(
                f"{path}:{line}: fn {name} is {length} lines (more than {max_lines}): "
                "split it into named steps"
            )
    return findings


def tracked_sources():
    out = subprocess.run(
        ["git", "ls-files", "*.rs"], check=True, capture_output=True, text=True
    ).stdout
    return [p for p in out.splitlines() if p and not p.startswith("target/")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-lines", type=int, default=MAX_LINES)
    ap.add_argument("paths", nargs="*")
    args = ap.parse_args()
    paths = args.paths or tracked_sources()
    findings = [f for p in paths for f in check(p, args.max_lines)]
    for f in findings:
        print(f)
    if findings:
        print(f"lint-shape: {len(findings)} finding(s) in {len(paths)} file(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
