"""permlmc: linear mode connectivity and permutation invariance of neural networks.

A typed PyTorch library reproducing Entezari et al., "The Role of Permutation Invariance in Linear Mode
Connectivity of Neural Networks" (ICLR 2022). It knows nothing of the workflow that drives it.
"""

__version__ = "0.1.0"
