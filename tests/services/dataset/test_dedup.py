"""Rows of one `dataset create` run that share an id: exact repeats are merged and counted, the
same id with different labels is an error listing the ids (an upsert would keep the last silently)."""

from __future__ import annotations

import json

import pytest

from facetopt.domain.dataset import DatasetRow
from facetopt.errors import InputError
from facetopt.services.dataset.create import deduplicated


def _row(row_id: str, label: str) -> DatasetRow:
    return DatasetRow(id=row_id, input={"facet_name": "Task"}, expected=label, metadata={}, tags=[])


def test_repeats_with_the_same_label_are_merged_and_counted(tmp_path):
    rows, merged = deduplicated([_row("a", "x"), _row("b", "y"), _row("a", "x")], tmp_path / "dups.jsonl")
    assert [r.id for r in rows] == ["a", "b"] and merged == 1
    assert not (tmp_path / "dups.jsonl").exists()


def test_the_same_id_with_different_labels_is_an_error_listing_it(tmp_path):
    with pytest.raises(InputError) as caught:
        deduplicated([_row("a", "x"), _row("b", "y"), _row("a", "z")], tmp_path / "dups.jsonl")
    assert "1 row id(s) appear more than once with different labels: a" in caught.value.message
    kept = [json.loads(line) for line in (tmp_path / "dups.jsonl").read_text().splitlines()]
    assert kept == [{"id": "a", "labels": ["x", "z"]}]
