"""The generator of the bundled sample (`python -m tests.sample.generate` rewrites
`src/facetopt/sample/sample_traces.jsonl`); tests and benchmarks import it, the package does not."""
