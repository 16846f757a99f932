"""The model side of Stepwise: grading, PRM scoring, selection, training, evaluation.

Plain Python + numpy/sympy/torch/transformers. Nothing here imports Django; torch is imported
only inside the modules that run a model, so `annotate` can use grading and selection cheaply.
"""
