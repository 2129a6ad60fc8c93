from facetopt.domain.dataset import DatasetRow
from facetopt.facets.data.balance import balance_report, balance_warnings


def make_row(i, facet, expected, split="train", production="something else"):
    return DatasetRow(
        id=f"row-{i}:{facet}",
        input={"facet_name": facet, "preprocessed_text": f"conversation {i}"},
        expected=expected,
        metadata={"split": split, "production_output": production},
    )


def balanced_rows(facet, n=20):
    return [
        make_row(i, facet, "A value" if i % 2 else "None.", "validation" if i % 5 == 0 else "train")
        for i in range(n)
    ]


def test_counts_per_facet_and_total():
    rows = balanced_rows("task") + balanced_rows("issues", 30)
    report = balance_report(rows, "ds", "proj", "local")
    by_name = {f.facet_name: f for f in report.facets}
    assert [f.facet_name for f in report.facets] == ["issues", "task"]
    assert (by_name["task"].rows, by_name["task"].positive, by_name["task"].negative) == (20, 10, 10)
    assert (by_name["task"].train, by_name["task"].validation) == (16, 4)
    assert (report.total.rows, report.total.positive, report.total.negative) == (50, 25, 25)
    assert (report.total.train, report.total.validation) == (40, 10)
    assert report.dataset == "ds" and report.target_project == "proj" and report.backend == "local"
    assert report.warnings == []


def test_facet_names_group_case_insensitively():
    rows = balanced_rows("task", 10) + [make_row(100 + i, "Task", "x") for i in range(10)]
    report = balance_report(rows, "ds", "proj", "local")
    assert len(report.facets) == 1 and report.facets[0].rows == 20


def test_small_facet_and_empty_bucket_warnings():
    rows = balanced_rows("task") + [make_row(i, "issues", "The bot lied") for i in range(5)]
    report = balance_report(rows, "ds", "proj", "local")
    assert any("'issues'" in w and "only 5 rows" in w for w in report.warnings)
    assert any("'issues'" in w and "no negative rows" in w for w in report.warnings)
    assert not any("'task'" in w for w in report.warnings)
    assert balance_warnings(report, rows) == report.warnings


def test_mostly_negative_dataset_warning():
    rows = [make_row(i, "issues", "None" if i < 17 else "A problem") for i in range(20)]
    report = balance_report(rows, "ds", "proj", "local")
    assert any("85% of the dataset is negative" in w for w in report.warnings)
    rows = [make_row(i, "issues", "None" if i < 16 else "A problem") for i in range(20)]
    assert not any("negative" in w for w in balance_report(rows, "ds", "proj", "local").warnings)


def test_labels_copying_production_output_warning():
    rows = [make_row(i, "task", "User wants a refund", production=" user wants a REFUND ") for i in range(11)]
    rows += [make_row(100 + i, "task", "None", production="other") for i in range(9)]
    report = balance_report(rows, "ds", "proj", "local")
    assert any("11 of 20 labels equal the production output" in w for w in report.warnings)
    rows = rows[1:] + [make_row(200, "task", "None", production="other")]  # exactly half: fine
    assert not any("production output" in w for w in balance_report(rows, "ds", "proj", "local").warnings)


def test_patterns_decide_the_final_bucket():
    rows = [make_row(i, "competitor", "No competitor" if i % 2 else "None") for i in range(20)]
    report = balance_report(rows, "ds", "proj", "local", patterns={"Competitor": "^no competitor$"})
    assert (report.facets[0].positive, report.facets[0].negative) == (10, 10)


def test_empty_dataset():
    report = balance_report([], "ds", "proj", "local")
    assert report.total.rows == 0 and report.warnings == ["the dataset has no rows"]
