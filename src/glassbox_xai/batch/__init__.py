"""Archive-scale batch jobs: predict, evaluate and rank thousands of photographs,
resumable after a crash, in this process, on a local Dask cluster or on a running one.

* :mod:`.inputs`: folders, list files and deterministic shards of them;
* :mod:`.jobs`: what one worker does with a chunk of images (small records out);
* :mod:`.resume`: what counts as already done, and the per-chunk record files;
* :mod:`.dask_runner`: the model kept on every Dask worker, chunks submitted by path;
* :mod:`.runner`: one generator that drives a job in-process or on Dask;
* :mod:`.commands`: the ``glassbox predict/evaluate/rank`` batch front end.

No napari, no Qt. TensorFlow is imported only where a model runs.
"""
