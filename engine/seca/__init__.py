"""SECA's math over tensors: SG-AKT, SE-VPR, the hybrid classifier and SECA++'s Gaussian replay.

Pure functions and small modules; the learner owns the training loop and calls them
(seca-method.md, sections 3-7).
"""
