"""docs/BENCHMARKS.md, one section at a time: what the `BENCH_ONLY=<section>` runs use to
put their section (and their rows of the Targets table) into the page in place of the old
ones, leaving the rest of the page as it was."""

import os
import platform
import subprocess


def into(out, title, lines, rows=None, row_prefix=None):
    """Replaces the section whose heading starts with `title` (up to the next `## `) in the
    page `out` with `lines`, or appends them when there is none. With `rows` (Markdown
    table rows) and `row_prefix`: the Targets table's rows starting with `row_prefix` are
    replaced by `rows`, where the first of them was (after the table's last row when there
    were none)."""
    text = open(out).read().split("\n") if os.path.exists(out) else ["# Benchmarks", "", "## Targets", "",
                                                                      "| target | measured | met |",
                                                                      "| --- | --- | --- |"]
    if rows is not None:
        top = next((i for i, l in enumerate(text) if l.strip() == "## Targets"), None)
        if top is not None:
            end = next((i for i in range(top + 1, len(text)) if text[i].startswith("## ")), len(text))
            block = text[top:end]
            old = {j for j, l in enumerate(block) if l.startswith(row_prefix)}
            if old:
                at = min(old)
                block = [l for j, l in enumerate(block) if j not in old]
            else:
                last = max((j for j, l in enumerate(block) if l.startswith("|")), default=None)
                at = None if last is None else last + 1
            if at is not None:
                block[at:at] = rows
            text[top:end] = block
    start = next((i for i, l in enumerate(text) if l.strip().startswith(title)), None)
    if start is None:
        while text and text[-1] == "":
            text.pop()
        text += [""] + lines
    else:
        end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
        lines = list(lines)
        while lines and lines[-1] == "":
            lines.pop()
        text[start:end] = lines + ([""] if end < len(text) else [])
    with open(out, "w") as f:
        f.write("\n".join(text).rstrip("\n") + "\n")


def sh(*cmd):
    """A command's output, or "?" when it cannot be had."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "?"


def measured_on():
    """"Measured DATE at commit REV on N cores (CPU), OS RELEASE": where a section's figures
    were taken."""
    cpu = sh("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    return (f"Measured {sh('date', '-u', '+%Y-%m-%d')} at commit {sh('git', 'rev-parse', '--short', 'HEAD')} on "
            f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}")
