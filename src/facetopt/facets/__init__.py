"""Pure facet rules (no I/O), in three groups: data/ (parsing, naming, buckets, sampling, the split
and placement of rows, dataset rows, balance), decide/ (scorers, metrics, paired statistics, the
compare verdict, label agreement, cost) and prompts/ (reading model replies, the proposal guard,
published function definitions). May import: the standard library, pydantic, domain."""
