"""Emotion analysis: a multi-label GoEmotions classifier for the workers.

This package root stays free of heavy imports (torch, transformers) so light modules such as
the API can import ``workers.emotion.data`` or ``workers.emotion.metrics`` cheaply. The model
lives in ``workers.emotion.model``.
"""
