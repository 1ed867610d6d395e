"""The seed's tumbling query in Bytewax 0.21, reading a '%U %p' log with FileSource.

Per design (not Blank), 5 s epoch-aligned windows with more than 3 frames;
prints {design: windows} as JSON. Run as its own process by bench_engine.py:

    .venv/bin/python benchmarks/bytewax_tumbling.py LOG

It parses each line (orjson, as sortcore does) but validates nothing.
"""

import json
import sys
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
from bytewax.connectors.files import FileSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, count_window
from bytewax.testing import TestingSink, run_main
from orjson import loads

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse(line):
    stamp, _, payload = line.partition(" ")
    return loads(payload)["image"], EPOCH + timedelta(seconds=float(stamp))


def main(path):
    flow = Dataflow("tumbling_socks")
    lines = op.input("lines", flow, FileSource(path))
    frames = op.map("parse", op.filter("not_empty", lines, bool), parse)
    socks = op.filter("not_blank", frames, lambda item: item[0].lower() != "blank")
    clock = EventClock(ts_getter=lambda item: item[1], wait_for_system_duration=timedelta(seconds=0))
    windower = TumblingWindower(length=timedelta(seconds=5), align_to=EPOCH)
    counted = count_window("count", socks, clock, windower, key=lambda item: item[0])
    found = op.filter("more_than_3", counted.down, lambda kv: kv[1][1] > 3)
    out = []
    op.output("out", found, TestingSink(out))
    run_main(flow)
    result = {}
    for image, _ in out:
        result[image] = result.get(image, 0) + 1
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
