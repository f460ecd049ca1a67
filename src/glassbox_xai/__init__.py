"""GlassBox-XAI: explainable skin-lesion segmentation with an Attention U-Net.

Research use only; not a medical device.
"""

__version__ = "0.1.0"
