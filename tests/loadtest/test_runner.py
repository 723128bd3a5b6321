"""The generator's own pauses stay out of what it measures. Locust patches the interpreter
with gevent on import, so the check runs in its own process."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import gc, json
from modelserve_loadtest.runner import no_full_collections

before = gc.get_threshold()
full, young = [], []
def watch(phase, info):
    if phase == "stop":
        (full if info["generation"] == 2 else young).append(1)
gc.callbacks.append(watch)

kept = []
with no_full_collections():
    full.clear(); young.clear()
    frozen = gc.get_freeze_count()
    for i in range(400_000):  # cycles, kept alive: what records do to the collector
        node = {"i": i}
        node["self"] = node
        kept.append(node)
    inside = {"full": len(full), "young": len(young), "frozen": frozen}
full.clear()
gc.collect()
print(json.dumps(inside | {
    "restored": gc.get_threshold() == before,
    "frozen_after": gc.get_freeze_count(),
    "full_after": len(full),
}))
"""


def test_a_run_pays_young_collections_only_and_one_full_collection_after() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # 400k tracked containers make hundreds of young collections, which with the default
    # thresholds would include dozens of full ones
    assert seen["young"] > 100
    assert seen["full"] == 0
    assert seen["frozen"] > 0  # what was old at the start is out of the collector's way
    assert seen["restored"] and seen["frozen_after"] == 0 and seen["full_after"] == 1
