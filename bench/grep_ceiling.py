#!/usr/bin/env python3
"""The practical ceiling of the parse benchmark: `grep -c -F MARKER FILE` (C locale), with
a fixed string that every query line of the flavour contains, best of --reps runs.

    python3 bench/grep_ceiling.py FILE --flavour auth-console [--reps 5] [--label NAME]

Prints one JSON object like `parse_bench` does; the time is the whole `grep` process
(start, read the file from the page cache, count), so it is a touch pessimistic.
"""

import argparse
import json
import os
import subprocess
import sys
import time

# The fixed string per flavour: on every line that can give a record (and on a few that
# do not: answers, the pipe backend's own SOA look-ups).
MARKERS = {
    "auth-console": " wants '",
    "auth-plain": " wants '",
    "auth-syslog": " wants '",
    "rec-old": "question for '",
    "rec-structured": 'msg="Question',
    "pipe": "Q\t",
    "journald-json": '"MESSAGE": "Question',
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--flavour", required=True, choices=sorted(MARKERS))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--label")
    args = ap.parse_args()
    marker = MARKERS[args.flavour]
    env = dict(os.environ, LC_ALL="C")
    cmd = ["grep", "-c", "-F", "--", marker, args.file]
    best, count = float("inf"), None
    for _ in range(args.reps):
        t = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        best = min(best, time.perf_counter() - t)
        count = int(out.strip())
    size = os.path.getsize(args.file)
    with open(args.file, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    json.dump(
        {
            "label": args.label or args.file,
            "file": args.file,
            "marker": marker,
            "lines": lines,
            "bytes": size,
            "matches": count,
            "reps": args.reps,
            "best_secs": best,
            "lines_per_sec": lines / best,
            "mb_per_sec": size / 1e6 / best,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
