"""Data rules: span parsing, facet names, none-like values and buckets, sampling, the split and
placement of rows (duplicates, traces), dataset rows and their balance.

Entry points: parsing.parse_span, split.assign_splits, placement.place_rows, rows.build_row,
balance.balance_report, text.bucket_of. May import: the standard library, pydantic, pydantic_core,
domain, and the other facets groups.
"""
