"""Scoring models on a dataset's test split: a predictions file (``score``) and the shipped baselines.

``metrics`` are the course's (average error, RMSLE, hit rate); ``predictions`` reads and matches a predictions
file; ``page`` renders the evaluation page; ``baseline`` fits and scores MLlib baselines.
"""
