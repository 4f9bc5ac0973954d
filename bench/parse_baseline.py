#!/usr/bin/env python3
"""The Python baseline for the parse benchmark: a straightforward compiled `re` per log
flavour, extracting (client, qname, qtype) from each line of a file held in memory.

    python3 bench/parse_baseline.py FILE --flavour auth-console [--reps 2]

Prints one JSON object like `parse_bench` does (best of --reps passes). Same work as the
Rust side: split the bytes into lines, find query lines, pull out the client address
(without port / ECS suffix), the name and the type; no lower-casing on either side.
"""

import argparse
import json
import re
import sys
import time

# (client, qname, qtype) group numbers, and the pattern, per flavour.
AUTH = (
    (1, 2, 3),
    re.compile(rb"(?:TCP )?Remote ([^ <]+)(?:<-\S+)? wants '([^']+)\|(\w+)'"),
)
REC_OLD = (
    (3, 1, 2),
    re.compile(rb"question for '([^']+)\|(\w+)' from \[?([0-9A-Fa-f.:]+?)\]?:\d+"),
)
REC_STRUCTURED = (
    (3, 1, 2),
    re.compile(
        rb'msg="Question(?: answered from packet cache)?" .*?qname="([^"]*)" '
        rb'qtype="([^"]*)" remote="\[?([^"\]]+?)\]?:\d+"'
    ),
)
PIPE = (
    (3, 1, 2),
    re.compile(rb"^Q\t([^\t]+)\t[^\t]+\t([^\t]+)\t[^\t]+\t([^\t]+)"),
)
FLAVOURS = {
    "auth-console": AUTH,
    "auth-plain": AUTH,
    "auth-syslog": AUTH,
    "rec-old": REC_OLD,
    "rec-structured": REC_STRUCTURED,
    "pipe": PIPE,
}

J_QUESTION = re.compile(rb'"MESSAGE": "Question')
J_QNAME = re.compile(rb'"QNAME": "([^"]*)"')
J_QTYPE = re.compile(rb'"QTYPE": "([^"]*)"')
J_REMOTE = re.compile(rb'"REMOTE": "\[?([^"\]]+?)\]?:\d+"')


def parse_regex(lines, flavour):
    (c, n, t), pattern = FLAVOURS[flavour]
    search = pattern.search
    out = []
    append = out.append
    pipe = flavour == "pipe"
    for line in lines:
        m = search(line)
        if m is None:
            continue
        client, qname, qtype = m.group(c, n, t)
        if pipe and client == b"0.0.0.0" and qtype == b"SOA":
            continue
        append((client, qname, qtype))
    return out


def parse_journald(lines):
    """journalctl -o json: the key order varies, so one search per field."""
    out = []
    append = out.append
    question, qname, qtype, remote = (
        J_QUESTION.search,
        J_QNAME.search,
        J_QTYPE.search,
        J_REMOTE.search,
    )
    for line in lines:
        if question(line) is None:
            continue
        n, t, r = qname(line), qtype(line), remote(line)
        if n is None or t is None or r is None:
            continue
        append((r.group(1), n.group(1), t.group(1)))
    return out


def run(data, flavour):
    lines = data.split(b"\n")
    if flavour == "journald-json":
        return len(lines), parse_journald(lines)
    return len(lines), parse_regex(lines, flavour)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--flavour", required=True, choices=sorted(FLAVOURS) + ["journald-json"])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--label")
    args = ap.parse_args()
    with open(args.file, "rb") as f:
        data = f.read()
    best, lines, queries = float("inf"), 0, 0
    for _ in range(args.reps):
        t = time.perf_counter()
        n, records = run(data, args.flavour)
        best = min(best, time.perf_counter() - t)
        lines, queries = n - (1 if data.endswith(b"\n") else 0), len(records)
        del records
    json.dump(
        {
            "label": args.label or args.file,
            "file": args.file,
            "python": sys.version.split()[0],
            "lines": lines,
            "bytes": len(data),
            "queries": queries,
            "reps": args.reps,
            "best_secs": best,
            "lines_per_sec": lines / best,
            "mb_per_sec": len(data) / 1e6 / best,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
