"""Evaluation: RecBole-comparable metrics, the baselines, and the experiment runner.

``metrics`` holds free functions over score matrices; ``baselines`` the reference models (pop,
ItemKNN, EASE, text); ``experiment`` fits a model from an explicit table and reports the metrics.
"""
