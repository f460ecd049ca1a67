"""Explanations of the segmentation model: confidence, saliency, integrated gradients,
Grad-CAM for every layer with attention coefficients, and faithfulness measures.

Each method is a generator that yields :class:`~glassbox_xai.inference.Progress`
and returns its maps at the photograph's native resolution; :func:`glassbox_xai.jobs.drive`
(or the method's synchronous wrapper) runs it to the end for scripts.
"""

METHODS = ("confidence", "saliency", "saliency-sigmoid", "ig", "gradcam")
