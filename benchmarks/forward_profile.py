"""Where the model's forward pass spends its time, by TensorFlow op type (issue 11's speed target).

``.venv/bin/python benchmarks/forward_profile.py [--variant dice] [--batch 4] [--runs 10]``

The forward model :class:`~glassbox_xai.inference.Segmenter` runs (batch normalisation folded
in) is frozen into a graph and run in a TensorFlow session with a full trace, after warm-up
runs; the table sums each op type's time per run (means over ``--runs``), so what is not a
convolution shows beside what is. Ops may overlap across the two cores, so the sum can
exceed the wall time.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="dice")
    parser.add_argument("--batch", type=int, default=4, help="images per call (default 4: one photograph with its four flips)")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)

    from glassbox_xai.tf_import import import_tensorflow

    tf = import_tensorflow()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from glassbox_xai.inference import Segmenter
    from glassbox_xai.model.registry import resolve_bundle

    segmenter = Segmenter.from_bundle(resolve_bundle(args.variant))
    size = segmenter.input_size
    forward = segmenter.forward
    concrete = tf.function(lambda x: forward(x, training=False)).get_concrete_function(tf.TensorSpec((args.batch, size, size, 3), tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(frozen.graph.as_graph_def(), name="")
    feed, fetch = frozen.inputs[0].name, frozen.outputs[0].name
    x = np.random.default_rng(0).random((args.batch, size, size, 3), dtype=np.float32)
    totals: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    walls = []
    with tf.compat.v1.Session(graph=graph) as session:
        for _ in range(5):
            session.run(fetch, {feed: x})
        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
        for _ in range(args.runs):
            metadata = tf.compat.v1.RunMetadata()
            start = time.perf_counter()
            session.run(fetch, {feed: x}, options=options, run_metadata=metadata)
            walls.append(time.perf_counter() - start)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    kind = node.timeline_label.split(" = ")[1].split("(")[0] if " = " in node.timeline_label else node.node_name
                    totals[kind] += node.all_end_rel_micros / 1000 / args.runs
                    counts[kind] += 1 / args.runs
    print(f"model {args.variant}, batch {args.batch} at {size} px, folded forward pass; traced wall time {1000 * np.median(walls):.1f} ms "
          f"(median of {args.runs})\n")
    print("| op type | ms per run | ops per run | share of the summed time |")
    print("| --- | ---: | ---: | ---: |")
    summed = sum(totals.values())
    for kind, ms in totals.most_common():
        if ms >= 0.01:
            print(f"| {kind} | {ms:.2f} | {counts[kind]:.0f} | {100 * ms / summed:.0f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
