from facetopt.domain.spans import FacetCall
from facetopt.facets.data.sampling import sample_calls


def make_call(row_id, root, facet, bucket):
    return FacetCall(
        source_row_id=row_id,
        root_span_id=root,
        facet_name=facet,
        messages=[],
        template_messages=[],
        suffix_messages=[],
        prompt_text="p",
        preprocessed_text="t",
        production_output="x" if bucket == "positive" else "none",
        weak_bucket=bucket,
    )


def ids(calls):
    return [c.source_row_id for c in calls]


def test_keeps_the_first_calls_per_facet_and_bucket_in_order():
    calls = [
        make_call("1", "a", "task", "positive"),
        make_call("2", "b", "task", "positive"),
        make_call("3", "c", "task", "positive"),  # over the positive limit of 2
        make_call("4", "d", "task", "negative"),
        make_call("5", "e", "Task", "negative"),  # facet names compare case-insensitively
        make_call("6", "f", "issues", "positive"),  # another facet has its own limits
    ]
    assert ids(sample_calls(calls, positive_limit=2, negative_limit=1)) == ["1", "2", "4", "6"]


def test_one_call_per_trace_and_facet():
    calls = [
        make_call("1", "a", "task", "positive"),
        make_call("2", "a", "TASK", "negative"),  # same trace and facet: dropped
        make_call("3", "a", "issues", "negative"),  # same trace, other facet: kept
    ]
    assert ids(sample_calls(calls, 100, 100)) == ["1", "3"]


def test_a_call_over_the_limit_does_not_claim_its_trace():
    calls = [
        make_call("1", "a", "task", "positive"),
        make_call("2", "b", "task", "positive"),  # over the limit: skipped
        make_call("3", "b", "task", "negative"),  # the same trace can still give a negative
    ]
    assert ids(sample_calls(calls, 1, 1)) == ["1", "3"]


def test_without_limits_only_duplicates_are_dropped():
    calls = [make_call(str(i), f"root-{i}", "task", "negative") for i in range(5)]
    calls.append(make_call("dup", "root-0", "task", "negative"))
    assert ids(sample_calls(calls, 1, 1, apply_limits=False)) == ["0", "1", "2", "3", "4"]


def test_zero_limit_keeps_nothing_of_that_bucket():
    calls = [make_call("1", "a", "task", "positive"), make_call("2", "b", "task", "negative")]
    assert ids(sample_calls(calls, 0, 5)) == ["2"]


def test_a_limit_reached_in_one_batch_holds_in_the_next():
    from facetopt.facets.data.sampling import Sampler

    sampler = Sampler(positive_limit=1, negative_limit=1)
    first = sampler.take([make_call("1", "a", "task", "positive"), make_call("2", "b", "task", "negative")])
    second = sampler.take(
        [
            make_call("3", "c", "task", "positive"),  # the positive limit was reached in the first batch
            make_call("4", "a", "sentiment", "positive"),  # another facet of trace a: its own limits
            make_call("5", "a", "Task", "negative"),  # trace a's task call was taken already
        ]
    )
    assert ids(first) == ["1", "2"] and ids(second) == ["4"]


def test_batches_of_any_size_keep_what_one_walk_keeps():
    import random

    from facetopt.facets.data.sampling import Sampler

    rng = random.Random(7)
    for _ in range(200):
        calls = [
            make_call(
                str(i),
                rng.choice("abcdefgh"),
                rng.choice(["task", "Task", "issues"]),
                rng.choice(["positive", "negative"]),
            )
            for i in range(rng.randint(0, 40))
        ]
        limits = (rng.randint(0, 5), rng.randint(0, 5))
        whole = ids(sample_calls(calls, *limits))
        sampler, batched, start = Sampler(*limits), [], 0
        while start < len(calls):
            size = rng.randint(1, 6)
            batched += ids(sampler.take(calls[start : start + size]))
            start += size
        assert batched == whole
