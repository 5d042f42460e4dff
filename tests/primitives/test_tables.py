"""Plain-text tables: alignment, number formats, empty input."""

from dualhrq.primitives.tables import format_table


def test_numbers_align_right_text_left_and_none_shows_as_dash():
    table = format_table([{"name": "a", "n": 1234, "x": 0.5, "lo": None},
                          {"name": "bbb", "n": 5, "x": -1.25, "lo": 3}], title="T")
    assert table.splitlines() == [
        "T",
        "name      n        x  lo",
        "----  -----  -------  --",
        "a     1,234   0.5000   -",
        "bbb       5  -1.2500   3",
    ]


def test_no_rows_give_an_empty_table():
    assert format_table([]) == ""
