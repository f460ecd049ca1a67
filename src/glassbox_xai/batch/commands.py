"""The batch front end of ``glassbox predict``, ``evaluate`` and ``rank``: inputs, shards,
resume, Dask, the failure report. :mod:`glassbox_xai.cli` hands over when asked."""

from __future__ import annotations

import sys
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

from ..data.layout import Sample, mask_name
from ..inference import Progress
from .inputs import InputError, collect
from .jobs import Item, Job, ModelSpec
from .resume import RecordStore, remove_stale_temporaries, write_csv, write_failure_report
from .runner import run_batch


def predict(args, bundle: Path) -> int:
    """``glassbox predict`` on an archive: one mask per image, written by whoever computes it."""
    samples = _select(collect(args.inputs), args)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    items = [Item(s.id, str(s.image.resolve()), None, str((out / mask_name(s.image)).resolve())) for s in samples]
    if not args.resume and not getattr(args, "overwrite", False):
        existing = [i for i in items if Path(i.output).exists()]
        if existing:
            raise InputError(f"{len(existing)} mask(s) already exist in {out}, e.g. {Path(existing[0].output).name}; "
                             "pass --resume to keep the complete ones, or --overwrite to replace them")
    if args.resume:
        stale = remove_stale_temporaries(out, {Path(i.output).name for i in items})
        if stale:
            print(f"removed {stale} temporary file(s) left by an interrupted run", file=sys.stderr)
    counts, failures = _run(args, bundle, Job("predict", resume=args.resume), items, store=None)
    report = write_failure_report(args.failures or out / "glassbox_failures.csv", failures)
    print(f"wrote {counts['written']} mask(s) to {out}" + (f", kept {counts['kept']} complete" if args.resume else "")
          + f" ({len(items)} image(s){_shard_text(args)}; failures: {len(failures)}, listed in {report})")
    return 1 if failures else 0


def evaluate(args, bundle: Path):
    """``glassbox evaluate --images`` on an archive; returns (evaluation, source, exit status)."""
    from ..metrics import Confusion, Evaluation

    samples = _select(collect(args.images, masks_dir=args.masks, require_masks=True), args)
    base = args.json or args.per_image or Path("glassbox-evaluate")
    store = RecordStore(args.state or base.with_name(base.stem + "_records"))
    records = _records(store, args, samples, Job("evaluate"), bundle)
    ids = [s.id for s in samples if s.id in records]
    confusions = [Confusion(*(int(records[i][k]) for k in ("tp", "fp", "fn", "tn"))) for i in ids]
    return Evaluation(ids, confusions), f"model {bundle.name} on {len(ids)} image(s){_shard_text(args)} (records in {store.folder})", records.status


def rank(args, bundle: Path) -> int:
    """``glassbox rank``: uncertainty of every image, most uncertain first, as CSV."""
    from ..hitl.ranking import HEADER, ranking_rows

    samples = _select(collect(args.inputs), args)
    store = RecordStore(args.state or args.output.with_name(args.output.stem + "_records"))
    records = _records(store, args, samples, Job("rank", passes=args.passes), bundle)
    rows = ranking_rows(records[s.id] for s in samples if s.id in records)
    write_csv(args.output, HEADER, rows)
    print(f"ranked {len(rows)} image(s){_shard_text(args)} most uncertain first in {args.output}")
    return records.status


class _Records(dict):
    status = 0


def _records(store: RecordStore, args, samples: list[Sample], job: Job, bundle: Path) -> _Records:
    """Run ``job`` on the samples without a record in ``store``; every record of the samples."""
    done = store.load()
    wanted = {s.id for s in samples}
    if done.keys() & wanted and not args.resume:
        raise InputError(f"{store.folder} already holds results for {len(done.keys() & wanted)} of these images; "
                         "pass --resume to keep them, or remove the folder to start over")
    items = [Item(s.id, str(s.image.resolve()), str(s.mask.resolve()) if s.mask else None) for s in samples if s.id not in done]
    _, failures = _run(args, bundle, job, items, store)
    report = args.failures or store.folder / "failures.csv"
    write_failure_report(report, failures)
    records = _Records({k: v for k, v in store.load().items() if k in wanted})
    if failures:
        print(f"{len(failures)} image(s) failed; listed in {report}", file=sys.stderr)
        records.status = 1
    return records


def _run(args, bundle: Path, job: Job, items: list[Item], store: RecordStore | None) -> tuple[Counter, list[dict]]:
    spec = ModelSpec(str(bundle), args.threshold, args.batch_size, args.tta, args.postprocess)
    counts: Counter = Counter()
    failures: list[dict] = []
    with _client(args) as client:
        for result in _progress(run_batch(spec, job, items, client, args.chunk_size), job.kind):
            good = [r for r in result["records"] if r["status"] != "failed"]
            if store is not None:
                store.write(good)
            for record in result["records"]:
                counts[record["status"]] += 1
                if record["status"] == "failed":
                    failures.append(record)
                    print(f"\nskipped {record['image']}: {record['message']}", file=sys.stderr)
    return counts, failures


def _client(args):
    if args.workers or args.scheduler:
        from .dask_runner import dask_client

        return dask_client(args.workers, args.scheduler)
    return nullcontext(None)


def _progress(job, label: str):
    from tqdm import tqdm

    with tqdm(desc=label, unit="img", file=sys.stderr, disable=None) as bar:
        for item in job:
            if isinstance(item, Progress):
                bar.total = item.total
                bar.n = item.done
                bar.refresh()
            else:
                yield item


def _select(samples: list[Sample], args) -> list[Sample]:
    return args.shard.select(samples) if args.shard else samples


def _shard_text(args) -> str:
    return f", shard {args.shard.index}/{args.shard.count}" if args.shard else ""
