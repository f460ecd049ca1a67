"""Explanations of the segmentation model (or of any Keras model, through a target
strategy): confidence, saliency, integrated gradients, Grad-CAM and HiRes-CAM for
every layer with attention coefficients, Grad-CAM++, Score-CAM, and faithfulness measures.

Each method is a generator that yields :class:`~glassbox_xai.inference.Progress`
and returns its maps at the photograph's native resolution; :func:`glassbox_xai.jobs.drive`
(or the method's synchronous wrapper) runs it to the end for scripts.
"""

METHODS = ("confidence", "saliency", "saliency-sigmoid", "ig", "gradcam", "hirescam", "gradcam++", "scorecam")
