"""Constants of the tiny models whose attributions are known in closed form (XAI tests)."""

import numpy as np

S = 32  # side of the test photographs and of the linear model's input
W = np.array([0.5, -1.0, 2.0], np.float32)  # the linear model's per-pixel weights: logits = W . x + 0.1
