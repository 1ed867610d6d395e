"""What a web library adds to the service process (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_web.py [--runs 5] [--requests 200]

Each candidate runs in a fresh process that has already imported paho (the
service's neighbour) and sortcore.web.live, then imports the library, starts a
server in a background thread serving the same /api/status JSON, and requests
it. Figures, medians over ``--runs`` processes:

- import: the library's import time;
- first: from before the import to the first response received (start-up);
- request: median time of one GET /api/status on a new connection, over ``--requests``;
- rss: resident memory the library and its server add to that process (MB).

Ratios are against the stdlib ``ThreadingHTTPServer`` (sortcore.web) measured in
the same run. Candidates that are not installed are reported as such
(aiohttp and bottle are in the ``bench`` extra).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r'''
import http.client, json, sys, threading, time
import paho.mqtt.client  # noqa: F401  (the service's neighbour in the process)
from sortcore.web.live import LiveView

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024.0

view = LiveView()
view.set_state({"session": 1, "rows": [{"image": "D%d" % i, "number_socks_seen": i, "pair_seen": "Pair",
                "pairs": i // 2} for i in range(20)], "odd": [], "updated_at": 1.0})
body = json.dumps(view.snapshot()).encode()
candidate, requests = sys.argv[1], int(sys.argv[2])
before = rss_mb()
t0 = time.perf_counter()
if candidate == "stdlib":
    from sortcore.web.server import start_http
    t1 = time.perf_counter()
    port = start_http(view, "127.0.0.1", 0, None).port
elif candidate == "aiohttp":
    import asyncio
    from aiohttp import web
    t1 = time.perf_counter()
    async def status(request):
        return web.Response(body=json.dumps(view.snapshot()).encode(), content_type="application/json")
    ready, box = threading.Event(), {}
    def serve():
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/api/status", status)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["port"] = runner.addresses[0][1]
        ready.set()
        loop.run_forever()
    threading.Thread(target=serve, daemon=True).start()
    ready.wait()
    port = box["port"]
elif candidate == "bottle":
    import bottle
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
    t1 = time.perf_counter()
    app = bottle.Bottle()
    @app.get("/api/status")
    def status():
        bottle.response.content_type = "application/json"
        return json.dumps(view.snapshot())
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass
    class Threaded(ThreadingMixIn, WSGIServer):  # SSE needs a thread per client
        daemon_threads = True
    server = make_server("127.0.0.1", 0, app, server_class=Threaded, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
else:
    raise SystemExit("unknown candidate " + candidate)

def get():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/status")
    data = conn.getresponse().read()
    conn.close()
    return data

assert json.loads(get())["rows"] == json.loads(body)["rows"]
t2 = time.perf_counter()
times = []
for _ in range(requests):
    s = time.perf_counter()
    get()
    times.append(time.perf_counter() - s)
print(json.dumps({"import": (t1 - t0) * 1000, "first": (t2 - t0) * 1000,
                  "request": sorted(times)[len(times) // 2] * 1000, "rss": rss_mb() - before}))
'''

CANDIDATES = ("stdlib", "aiohttp", "bottle")
MODULES = {"stdlib": "http.server", "aiohttp": "aiohttp", "bottle": "bottle"}


def installed(candidate) -> bool:
    import importlib.util
    return importlib.util.find_spec(MODULES[candidate]) is not None


def measure(candidate, runs, requests):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CHILD, candidate, str(requests)], env=env,
                             check=True, stdout=subprocess.PIPE).stdout
        samples.append(json.loads(out))
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def version(candidate):
    if candidate == "stdlib":
        return "Python %d.%d.%d" % sys.version_info[:3]
    from importlib.metadata import version as dist_version
    return "%s %s" % (candidate, dist_version(candidate))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    results = {}
    for candidate in CANDIDATES:
        if installed(candidate):
            results[candidate] = measure(candidate, args.runs, args.requests)
        else:
            print("%-8s not installed (pip install '.[bench]')" % candidate)
    ref = results["stdlib"]
    print("median of %d processes, %d requests each; ratios against stdlib in this run" % (args.runs, args.requests))
    print("%-8s %-20s %14s %14s %14s %14s" % ("", "version", "import ms", "first ms", "request ms", "rss +MB"))
    for candidate, r in results.items():
        cells = ["%6.2f (x%4.1f)" % (r[k], r[k] / ref[k] if ref[k] else float("nan"))
                 for k in ("import", "first", "request", "rss")]
        print("%-8s %-20s %s" % (candidate, version(candidate), " ".join(cells)))


if __name__ == "__main__":
    main()
