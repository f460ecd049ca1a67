"""napari integration: the only part of GlassBox-XAI that imports napari or Qt.

Nothing here imports TensorFlow: models run in a worker process.
"""
