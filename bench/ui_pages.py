#!/usr/bin/env python3
"""Times the web UI's pages on a running `edgewatch serve` (bench/ui_bench.sh starts it on
the 100,000-node graph): over HTTP to the last byte, and in headless Chromium (Debian's
chromium through chromedriver, spoken to over WebDriver's HTTP protocol) from navigation
start to the load event. Prints one JSON object.

    python3 bench/ui_pages.py --base http://127.0.0.1:PORT --dc DC [--runs N] [--serve-pid PID]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

# `serve` keeps the overview's live reads this long ([api] snapshot_max_age, default 5 s):
# a "fresh" run waits it out, so the page reads the store again.
CACHE_AGE_S = 5.5


def fetch(url):
    """(status, bytes, seconds to the last byte)."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return status, len(body), time.perf_counter() - t


def stats(xs):
    xs = sorted(xs)
    return {"runs": len(xs), "median_ms": 1000 * xs[len(xs) // 2], "max_ms": 1000 * xs[-1], "min_ms": 1000 * xs[0]}


def http_page(url, runs):
    """The first answer, then `runs` each with the cache's age passed, then `runs` within it."""
    status, size, first = fetch(url)
    if status != 200:
        raise SystemExit(f"{url}: HTTP {status}")
    fresh, cached = [], []
    for _ in range(runs):
        time.sleep(CACHE_AGE_S)
        fresh.append(fetch(url)[2])
        cached.append(fetch(url)[2])
    return {"url": url, "bytes": size, "first_ms": 1000 * first, "fresh": stats(fresh), "cached": stats(cached)}


class Driver:
    """chromedriver on a free port of 127.0.0.1, one headless Chromium session."""

    def __init__(self):
        exe = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([exe, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                self.call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--disable-extensions"]}}}}
        self.session = self.call("POST", "/session", caps)["value"]["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())

    def visit(self, url):
        """Navigation Timing of one page load, in ms from navigation start."""
        self.call("POST", f"/session/{self.session}/url", {"url": "about:blank"})
        t = time.perf_counter()
        self.call("POST", f"/session/{self.session}/url", {"url": url})
        wall = time.perf_counter() - t
        nav = self.call("POST", f"/session/{self.session}/execute/sync", {"script": """
            const n = performance.getEntriesByType('navigation')[0];
            return {responseStart: n.responseStart, responseEnd: n.responseEnd,
                    domInteractive: n.domInteractive, domContentLoaded: n.domContentLoadedEventEnd,
                    load: n.loadEventEnd, bytes: n.transferSize,
                    elements: document.getElementsByTagName('*').length,
                    title: document.title};""", "args": []})["value"]
        nav["wall_ms"] = 1000 * wall
        return nav

    def close(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.kill()
            self.proc.wait()


def browser_page(driver, url, runs):
    visits = []
    for _ in range(runs):
        time.sleep(CACHE_AGE_S)
        visits.append(driver.visit(url))
    loads = sorted(v["load"] for v in visits)
    return {"url": url, "visits": visits, "median_load_ms": loads[len(loads) // 2], "max_load_ms": loads[-1],
            "elements": visits[-1]["elements"], "title": visits[-1]["title"]}


def rss_mb(pid):
    try:
        fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
        return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}
    except (OSError, KeyError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--dc", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--serve-pid", type=int)
    ap.add_argument("--fill")
    ap.add_argument("--commands")
    a = ap.parse_args()
    dc = urllib.parse.quote(a.dc, safe="")
    pages = {"overview": "/", "map": "/ui/map", "map_dc": f"/ui/map/dc/{dc}"}
    out = {"dc": a.dc, "runs": a.runs, "cache_age_s": CACHE_AGE_S, "http": {}, "browser": {}}
    for name, path in pages.items():
        out["http"][name] = http_page(a.base + path, a.runs)
        print(f"http {name}: first {out['http'][name]['first_ms']:.0f} ms, "
              f"fresh median {out['http'][name]['fresh']['median_ms']:.0f} ms", file=os.sys.stderr)
    driver = Driver()
    try:
        for name in ("overview", "map_dc"):
            out["browser"][name] = browser_page(driver, a.base + pages[name], a.runs)
            print(f"browser {name}: load median {out['browser'][name]['median_load_ms']:.0f} ms",
                  file=os.sys.stderr)
    finally:
        driver.close()
    if a.serve_pid:
        out["serve_memory_mb"] = rss_mb(a.serve_pid)
    if a.fill:
        out["graph"] = json.load(open(a.fill))
    if a.commands:
        out["commands"] = open(a.commands).read().splitlines()
    out["chromium"] = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
