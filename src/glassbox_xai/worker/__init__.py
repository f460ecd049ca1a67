"""The model worker process (TensorFlow side) and its client (napari side)."""
