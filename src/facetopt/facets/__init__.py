"""Pure facet rules (no I/O): text and none-like values, span parsing, naming, weak buckets,
sampling, the train/validation split, dataset rows, scorers and dataset balance."""
