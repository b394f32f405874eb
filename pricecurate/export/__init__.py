"""A dataset's splits as fine-tuning files: ``formats`` (one record per row, per format), ``tokens`` (counted with
the dataset's tokenizer), ``build`` (written in a fixed order and published all at once)."""
