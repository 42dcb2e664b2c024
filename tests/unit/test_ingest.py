"""Tests for recagents.data.ingest: CSV catalogs in, strict errors with line numbers out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recagents.data import load_dataset
from recagents.data.ingest import (
    BadRowsError,
    IngestReport,
    RowProblem,
    ingested_names,
    load_ingested,
    parse_delimiter,
    parse_rating_range,
    read_catalog,
    save_ingested,
    validate_name,
)
from recagents.errors import ConfigError, DataError

ITEMS = (
    "item_id,title,genres,plot\n"
    "i1,Toy Story (1995),Animation|Comedy,Toys come alive\n"
    'i2,"Usual Suspects, The (1995)",Crime|Thriller,"A lineup, a lie"\n'
    "i3,Seven,Thriller,\n"
    "i4,Unwatched,Drama,Nobody saw it\n"
)
INTERACTIONS = (
    "user_id,item_id,rating,timestamp\n"
    "u1,i1,4,100\n"
    "u1,i2,5,200\n"
    "u2,i1,3.5,300\n"
    "u2,i3,2,400\n"
    "u3,i2,1,500\n"
    "u3,i2,2,600\n"
)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path, "interactions.csv", INTERACTIONS), write(tmp_path, "items.csv", ITEMS)


def read_error(tmp_path: Path, interactions: str | bytes, items: str | bytes = ITEMS, **kw):
    inter = write(tmp_path, "interactions.csv", interactions)
    item_path = write(tmp_path, "items.csv", items)
    with pytest.raises(DataError) as info:
        read_catalog(inter, item_path, **kw)
    return info.value


# ---------------------------------------------------------------------------------------------
# Happy path


def test_happy_path_counts_ids_and_values(catalog: tuple[Path, Path]) -> None:
    dataset, report = read_catalog(*catalog, name="tiny")

    assert dataset.name == "tiny"
    assert list(dataset.user_map.ids) == ["u1", "u2", "u3"]
    assert list(dataset.item_map.ids) == ["i1", "i2", "i3", "i4"]
    assert (dataset.n_users, dataset.n_items, len(dataset.interactions)) == (3, 4, 6)
    assert dataset.interactions["user"].tolist() == [0, 0, 1, 1, 2, 2]
    assert dataset.interactions["item"].tolist() == [0, 1, 0, 2, 1, 1]
    assert dataset.interactions["rating"].tolist() == [4.0, 5.0, 3.5, 2.0, 1.0, 2.0]
    assert dataset.interactions["timestamp"].tolist() == [100, 200, 300, 400, 500, 600]
    assert (report.interactions_read, report.interactions_kept) == (6, 6)
    assert (report.items_read, report.items_kept) == (4, 4)
    assert report.users_read is None
    assert report.problems == []
    assert report.duplicate_interactions == 1  # u3 rated i2 twice: kept, counted
    assert report.delimiters == {"items.csv": ",", "interactions.csv": ","}


def test_quoted_commas_year_extraction_and_extra_text(catalog: tuple[Path, Path]) -> None:
    dataset, _ = read_catalog(*catalog)
    items = dataset.items.set_index("item_id")

    assert items.loc["i2", "title"] == "Usual Suspects, The"
    assert items.loc["i2", "plot"] == "A lineup, a lie"
    assert items.loc["i1", "title"] == "Toy Story"
    assert items.loc["i1", "year"] == 1995
    assert pd.isna(items.loc["i3", "year"])
    assert items.loc["i3", "title"] == "Seven"
    assert dataset.item_title(0) == "Toy Story (1995)"
    assert items.loc["i1", "genres"] == "Animation|Comedy"


def test_year_column_is_used_and_genres_are_normalised(tmp_path: Path) -> None:
    items = write(
        tmp_path,
        "items.csv",
        "item_id,title,year,genres\n"
        'a,Heat,1995,"Action, Crime"\n'
        "b,Alien (1979),,Horror;Sci-Fi\n"
        "c,Blade Runner,,(no genres listed)\n",
    )
    inter = write(tmp_path, "inter.csv", "user_id,item_id\nx,a\nx,b\n")
    dataset, _ = read_catalog(inter, items)

    assert dataset.items["year"].tolist()[:2] == [1995, 1979]
    assert pd.isna(dataset.items["year"].iloc[2])
    assert dataset.items["title"].tolist() == ["Heat", "Alien", "Blade Runner"]
    assert dataset.items["genres"].tolist() == ["Action|Crime", "Horror|Sci-Fi", ""]
    assert np.isnan(dataset.interactions["rating"]).all()  # no rating column: implicit
    assert dataset.interactions["timestamp"].tolist() == [0, 0]


def test_utf8_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    items = write(tmp_path, "items.csv", b"\xef\xbb\xbfitem_id,title\r\n1,Am\xc3\xa9lie\r\n")
    inter = write(tmp_path, "inter.csv", b"\xef\xbb\xbfUser_ID,Item_Id\r\n7,1\r\n")
    dataset, _ = read_catalog(inter, items)

    assert list(dataset.item_map.ids) == ["1"]
    assert dataset.items["title"].tolist() == ["Amélie"]
    assert list(dataset.user_map.ids) == ["7"]


def test_header_names_match_ignoring_case_and_spaces(tmp_path: Path) -> None:
    items = write(tmp_path, "items.csv", " Item_ID , TITLE ,Plot Summary\n1,Heat,cops\n")
    inter = write(tmp_path, "inter.csv", "USER_ID,item_id , Rating\n7,1,3\n")
    dataset, _ = read_catalog(inter, items)

    assert dataset.items["plot_summary"].tolist() == ["cops"]
    assert dataset.interactions["rating"].tolist() == [3.0]


@pytest.mark.parametrize(("delimiter", "sep"), [("\t", "\t"), (";", ";"), ("|", "|")])
def test_delimiter_is_sniffed_from_the_header(tmp_path: Path, delimiter: str, sep: str) -> None:
    items = write(tmp_path, "items.csv", f"item_id{sep}title\n1{sep}Heat, The\n")
    inter = write(tmp_path, "inter.csv", f"user_id{sep}item_id{sep}rating\n7{sep}1{sep}4\n")
    dataset, report = read_catalog(inter, items)

    assert dataset.items["title"].tolist() == ["Heat, The"]
    assert report.delimiters["items.csv"] == delimiter


def test_explicit_tab_delimiter_by_name(tmp_path: Path) -> None:
    items = write(tmp_path, "items.csv", "item_id\ttitle\n1\tHeat\n")
    inter = write(tmp_path, "inter.csv", "user_id\titem_id\n7\t1\n")
    dataset, report = read_catalog(inter, items, delimiter="tab")

    assert dataset.n_items == 1
    assert report.delimiters["inter.csv"] == "\t"


def test_users_file_attributes_are_kept(tmp_path: Path, catalog: tuple[Path, Path]) -> None:
    users = write(tmp_path, "users.csv", "user_id,age,gender\nu1,34,F\nu9,,M\n")
    dataset, report = read_catalog(*catalog, users=users)

    assert list(dataset.user_map.ids) == ["u1", "u9", "u2", "u3"]  # file order, then new users
    assert dataset.users["age"].iloc[0] == 34
    assert pd.isna(dataset.users["age"].iloc[1])
    assert dataset.users["gender"].tolist()[:2] == ["F", "M"]
    assert (report.users_read, report.users_kept) == (2, 2)


def test_empty_rating_is_implicit_and_iso_timestamps_parse(tmp_path: Path) -> None:
    err_free = "user_id,item_id,rating,timestamp\nu1,i1,,2020-01-01\nu1,i3,4,1.5e3\n"
    inter = write(tmp_path, "inter.csv", err_free)
    dataset, report = read_catalog(inter, write(tmp_path, "items.csv", ITEMS))

    assert math.isnan(dataset.interactions["rating"].iloc[0])
    assert dataset.interactions["timestamp"].tolist() == [1577836800, 1500]
    assert report.ratings_missing == 1


def test_blank_lines_and_padding_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    inter = write(tmp_path, "inter.csv", "user_id,item_id\nu1,i1\n\n,\nu2,i3\n")
    dataset, report = read_catalog(inter, write(tmp_path, "items.csv", ITEMS))

    assert len(dataset.interactions) == 2
    assert report.blank_rows == 1
    assert "1 blank rows skipped" in report.format()


# ---------------------------------------------------------------------------------------------
# File-level failures


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    items = write(tmp_path, "items.csv", ITEMS)
    with pytest.raises(DataError, match="no such file") as info:
        read_catalog(tmp_path / "nope.csv", items)
    assert str(tmp_path / "nope.csv") in str(info.value)


def test_zero_byte_file(tmp_path: Path) -> None:
    error = read_error(tmp_path, INTERACTIONS, items="")
    assert "items.csv is empty (0 bytes)" in str(error)


def test_blank_only_file(tmp_path: Path) -> None:
    error = read_error(tmp_path, "\n  \n", items=ITEMS)
    assert "interactions.csv is empty" in str(error)


def test_header_only_file(tmp_path: Path) -> None:
    error = read_error(tmp_path, "user_id,item_id,rating\n")
    assert "interactions.csv has a header but no rows" in str(error)


def test_not_utf8_reports_line_offset_and_fix(tmp_path: Path) -> None:
    latin1 = "item_id,title\n1,Heat\n2,Am\xe9lie\n".encode("latin-1")
    error = read_error(tmp_path, INTERACTIONS, items=latin1)
    message = str(error)

    assert "items.csv is not UTF-8" in message
    assert "line 3" in message
    assert "byte 0xe9" in message
    assert f"byte offset {len(b'item_id,title' + b'1,Heat') + 2 + 4}" in message
    assert "save it as UTF-8" in message


def test_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    error = read_error(tmp_path, INTERACTIONS, items="item_id,title\n1,x\n".encode("utf-16"))
    assert "UTF-16" in str(error)
    assert "line 1" in str(error)


def test_missing_column_lists_required_and_found(tmp_path: Path) -> None:
    error = read_error(tmp_path, "user,item_id,rating\nu1,i1,4\n")
    message = str(error)

    assert "interactions.csv: missing required column(s) user_id" in message
    assert "required: user_id, item_id" in message
    assert "found: user, item_id, rating" in message


def test_missing_title_column(tmp_path: Path) -> None:
    error = read_error(tmp_path, INTERACTIONS, items="item_id,name\n1,Heat\n")
    assert "missing required column(s) title" in str(error)
    assert "found: item_id, name" in str(error)


def test_explicit_wrong_delimiter_suggests_the_right_one(tmp_path: Path) -> None:
    error = read_error(
        tmp_path,
        "user_id;item_id\nu1;i1\n",
        items="item_id;title\ni1;Heat\n",
        delimiter=",",
    )
    message = str(error)

    assert "items.csv: header has one column 'item_id;title'" in message
    assert "looks ';'-separated; pass --delimiter ';'" in message


def test_explicit_wrong_delimiter_suggests_tab(tmp_path: Path) -> None:
    items = "item_id\ttitle\ni1\tHeat\n"
    error = read_error(tmp_path, "user_id\titem_id\nu1\ti1\n", items=items, delimiter=";")
    assert "items.csv: header has one column 'item_id\\ttitle'" in str(error)
    assert "looks tab-separated; pass --delimiter tab" in str(error)


def test_unknown_delimiter_names_the_candidates(tmp_path: Path) -> None:
    error = read_error(tmp_path, "user_id:item_id\nu1:i1\n")
    message = str(error)

    assert "interactions.csv: header has one column 'user_id:item_id'" in message
    assert "',', tab, ';' or '|'" in message


def test_empty_and_repeated_header_names(tmp_path: Path) -> None:
    error = read_error(tmp_path, "user_id,item_id,\nu1,i1,\n")
    assert "header column 3 has no name" in str(error)
    error = read_error(tmp_path, "user_id,item_id,Rating,rating\nu1,i1,1,2\n")
    assert "header repeats column(s) rating" in str(error)


def test_duplicate_item_ids_list_ids_and_lines(tmp_path: Path) -> None:
    items = "item_id,title\ni1,A\ni2,B\ni1,C\ni3,D\ni2,E\ni1,F\n"
    error = read_error(tmp_path, INTERACTIONS, items=items)
    message = str(error)

    assert "items.csv: 2 item ids appear more than once" in message
    assert "'i1' (lines 2, 4, 7)" in message
    assert "'i2' (lines 3, 6)" in message
    assert "i3" not in message


def test_duplicate_user_ids_in_users_file(tmp_path: Path, catalog: tuple[Path, Path]) -> None:
    users = write(tmp_path, "users.csv", "user_id,age\nu1,30\nu2,40\nu1,31\n")
    with pytest.raises(DataError) as info:
        read_catalog(*catalog, users=users)
    assert "users.csv: 1 user ids appear more than once: 'u1' (lines 2, 4)" in str(info.value)


def test_whole_file_on_another_rating_scale_is_a_file_error(tmp_path: Path) -> None:
    inter = "user_id,item_id,rating\nu1,i1,7\nu1,i2,10\nu2,i1,8\n"
    error = read_error(tmp_path, inter)
    message = str(error)

    assert not isinstance(error, BadRowsError)
    assert "interactions.csv: 3 of 3 ratings lie outside 0-5" in message
    assert "--rating-range 7,10" in message
    dataset, _ = read_catalog(
        tmp_path / "interactions.csv", tmp_path / "items.csv", rating_range=(1, 10)
    )
    assert dataset.interactions["rating"].tolist() == [7.0, 10.0, 8.0]


def test_a_large_share_out_of_range_is_a_scale_problem(tmp_path: Path) -> None:
    rows = "".join(f"u{i},i1,{1 + i % 10}\n" for i in range(40))  # a 1-10 scale
    error = read_error(tmp_path, "user_id,item_id,rating\n" + rows)
    assert "20 of 40 ratings lie outside 0-5 (they span 1-10)" in str(error)
    assert "--rating-range 1,10" in str(error)


def test_unclosed_quote_is_a_file_error_with_its_line(tmp_path: Path) -> None:
    items = 'item_id,title\ni1,Heat\ni2,"Alien\ni3,Seven\n'
    error = read_error(tmp_path, INTERACTIONS, items=items)
    assert "items.csv: the quoted field opened on line 3 never closes" in str(error)


def test_item_ids_from_another_catalog(tmp_path: Path) -> None:
    error = read_error(tmp_path, "user_id,item_id\nu1,99\nu2,98\n")
    message = str(error)
    assert "interactions.csv: none of its item ids appear in items.csv" in message
    assert "'i1'" in message


def test_bad_arguments_are_config_errors(catalog: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="one character"):
        read_catalog(*catalog, delimiter=",,")
    with pytest.raises(ConfigError, match="MIN <= MAX"):
        read_catalog(*catalog, rating_range=(5, 1))
    with pytest.raises(ConfigError, match="built in"):
        read_catalog(*catalog, name="movielens-100k")


# ---------------------------------------------------------------------------------------------
# Row-level problems

BAD_INTERACTIONS = (
    "user_id,item_id,rating,timestamp\n"  # 1
    "u1,i1,4,100\n"  # 2 ok
    "u1,i2,4,100,extra\n"  # 3 too many fields
    ",i1,3,100\n"  # 4 empty user_id
    "u2,,3,100\n"  # 5 empty item_id
    "u2,i1,good,100\n"  # 6 rating not a number
    "u2,i2,9,100\n"  # 7 rating out of range
    "u2,i3,3,yesterday\n"  # 8 bad timestamp
    "u3,i99,3,100\n"  # 9 unknown item
    "u3,i4,3,100\n"  # 10 item on a bad row of items.csv
    "u3,i3,3\n"  # 11 too few fields
    'u4,"i1,x",3,100\n'  # 12 quoted, unknown item id
    'u4,i3,"4,5",7\n'  # 13 decimal comma
    "u5,i1,2,200\n"  # 14 ok
)
BAD_ITEMS = ITEMS.replace("i4,Unwatched,Drama,Nobody saw it", "i4,,Drama,no title")
EXPECTED = [
    ("items.csv", 5, "empty title"),
    ("interactions.csv", 3, "expected 4 fields, found 5"),
    ("interactions.csv", 4, "empty user_id"),
    ("interactions.csv", 5, "empty item_id"),
    ("interactions.csv", 6, "rating 'good' is not a number"),
    ("interactions.csv", 7, "rating 9 is outside 0-5"),
    ("interactions.csv", 8, "timestamp 'yesterday' is neither a number nor an ISO 8601 date"),
    ("interactions.csv", 9, "item_id 'i99' is not in items.csv"),
    ("interactions.csv", 10, "item_id 'i4' is on a bad row of items.csv (line 5)"),
    ("interactions.csv", 11, "expected 4 fields, found 3"),
    ("interactions.csv", 12, "item_id 'i1,x' is not in items.csv"),
    ("interactions.csv", 13, "rating '4,5' is not a number (use '.' as the decimal point)"),
]


def test_bad_rows_fail_by_default_with_lines_and_reasons(tmp_path: Path) -> None:
    error = read_error(tmp_path, BAD_INTERACTIONS, items=BAD_ITEMS)
    message = str(error)

    assert isinstance(error, BadRowsError)
    assert message.startswith(f"{len(EXPECTED)} bad rows in the input")
    for file, line, reason in EXPECTED:
        assert f"{file}:{line}: {reason}" in message
    assert "fix them or pass --skip-bad-rows to drop them (they will be listed)" in message
    assert [(p.file, p.line) for p in error.problems] == [(f, n) for f, n, _ in EXPECTED]


def test_too_many_fields_hints_at_quoting(tmp_path: Path) -> None:
    error = read_error(tmp_path, BAD_INTERACTIONS, items=BAD_ITEMS)
    assert "found 5 (a value holding ',' must be in double quotes)" in str(error)


def test_skip_bad_rows_drops_and_lists_them(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", BAD_INTERACTIONS)
    items = write(tmp_path, "items.csv", BAD_ITEMS)
    dataset, report = read_catalog(inter, items, skip_bad_rows=True)

    assert [(p.file, p.line) for p in report.problems] == [(f, n) for f, n, _ in EXPECTED]
    assert all(
        reason in p.reason for p, (_, _, reason) in zip(report.problems, EXPECTED, strict=True)
    )
    assert (report.interactions_read, report.interactions_kept) == (13, 2)
    assert (report.items_read, report.items_kept) == (4, 3)
    assert list(dataset.item_map.ids) == ["i1", "i2", "i3"]
    assert list(dataset.user_map.ids) == ["u1", "u5"]
    assert dataset.interactions["timestamp"].tolist() == [100, 200]
    summary = report.format()
    assert f"{len(EXPECTED)} bad rows dropped:" in summary
    assert "  items.csv:5: empty title" in summary
    assert "  interactions.csv:7: rating 9 is outside 0-5" in summary


def test_messages_show_at_most_twenty_problems(tmp_path: Path) -> None:
    rows = "".join(f"u{i},,1\n" for i in range(25))
    error = read_error(tmp_path, "user_id,item_id,rating\nu0,i1,1\n" + rows)
    message = str(error)

    assert message.startswith("25 bad rows")
    assert "interactions.csv:3: empty item_id" in message  # line 2 is a good row
    assert "interactions.csv:22: empty item_id" in message
    assert "interactions.csv:23:" not in message
    assert "... and 5 more" in message
    assert len(error.problems) == 25


def test_multiline_record_with_wrong_width_names_its_span(tmp_path: Path) -> None:
    items = 'item_id,title\ni1,"Heat\nThe"\ni2,"x" y, z\ni3,Seven\n'
    error = read_error(tmp_path, "user_id,item_id\nu1,i1\n", items=items)
    message = str(error)
    assert "items.csv:4: broken quoting" in message
    assert isinstance(error, BadRowsError)
    items = 'item_id,title\ni1,"Heat\nThe",extra\ni3,Seven\n'
    error = read_error(tmp_path, "user_id,item_id\nu1,i3\n", items=items)
    assert "items.csv:2: expected 2 fields, found 3 (the record runs over lines 2-3" in str(error)


def test_bad_year_runtime_and_age_are_row_problems(tmp_path: Path) -> None:
    items = "item_id,title,year,runtime\ni1,Heat,199x,120\ni2,Alien,1979,long\ni3,Seven,1995,127\n"
    users = write(tmp_path, "users.csv", "user_id,age\nu1,old\n")
    inter = write(tmp_path, "interactions.csv", "user_id,item_id\nu1,i3\n")
    with pytest.raises(BadRowsError) as info:
        read_catalog(inter, write(tmp_path, "items.csv", items), users=users)
    message = str(info.value)
    assert "items.csv:2: year '199x' is not a whole number" in message
    assert "items.csv:3: runtime 'long' is not a number" in message
    assert "users.csv:2: age 'old' is not a whole number" in message


def test_single_outlier_is_a_row_problem_not_a_scale_error(tmp_path: Path) -> None:
    rows = "".join(f"u{i},i1,{i % 5 + 1}\n" for i in range(30))
    error = read_error(tmp_path, "user_id,item_id,rating\n" + rows + "u99,i1,50\n")
    assert isinstance(error, BadRowsError)
    assert "interactions.csv:32: rating 50 is outside 0-5" in str(error)


# ---------------------------------------------------------------------------------------------
# Persistence


def test_save_and_load_round_trip(tmp_path: Path, catalog: tuple[Path, Path]) -> None:
    users = write(tmp_path, "users.csv", "user_id,age,gender\nu1,34,F\n")
    dataset, report = read_catalog(*catalog, users=users, name="tiny")
    home = tmp_path / "home"
    folder = save_ingested(dataset, report, home, "tiny")

    assert folder == home / "datasets" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == [
        "interactions.tsv",
        "items.tsv",
        "meta.json",
        "users.tsv",
    ]
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert (meta["name"], meta["users"], meta["items"], meta["interactions"]) == ("tiny", 3, 4, 6)
    assert meta["problems"] == 0 and meta["created"]
    assert (folder / "interactions.tsv").read_text().splitlines()[1] == "u1\ti1\t4.0\t100"

    loaded = load_ingested("tiny", home)
    assert (loaded.n_users, loaded.n_items) == (dataset.n_users, dataset.n_items)
    assert list(loaded.user_map.ids) == list(dataset.user_map.ids)
    assert list(loaded.item_map.ids) == list(dataset.item_map.ids)
    pd.testing.assert_frame_equal(loaded.interactions, dataset.interactions)
    assert loaded.items["title"].tolist() == dataset.items["title"].tolist()
    assert loaded.items["year"].tolist()[:2] == [1995, 1995]
    assert loaded.items["plot"].tolist() == dataset.items["plot"].tolist()
    assert loaded.users["age"].iloc[0] == 34

    by_path = load_ingested(str(folder))
    pd.testing.assert_frame_equal(by_path.interactions, dataset.interactions)
    via_data = load_dataset("tiny", home=home)
    assert via_data.n_items == 4


def test_save_replaces_an_earlier_dataset(tmp_path: Path, catalog: tuple[Path, Path]) -> None:
    dataset, report = read_catalog(*catalog)
    save_ingested(dataset, report, tmp_path, "shop")
    small = write(tmp_path, "small.csv", "user_id,item_id\nz,i4\n")
    dataset2, report2 = read_catalog(small, catalog[1])
    save_ingested(dataset2, report2, tmp_path, "shop")

    assert load_ingested("shop", tmp_path).n_users == 1
    assert ingested_names(tmp_path) == ["shop"]
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == ["shop"]  # no leftovers


def test_save_refuses_a_folder_it_did_not_write(tmp_path: Path, catalog: tuple[Path, Path]) -> None:
    dataset, report = read_catalog(*catalog)
    (tmp_path / "datasets" / "mine").mkdir(parents=True)
    (tmp_path / "datasets" / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not made by recagents ingest"):
        save_ingested(dataset, report, tmp_path, "mine")
    assert (tmp_path / "datasets" / "mine" / "notes.txt").read_text() == "keep me"


def test_unknown_dataset_lists_what_exists(tmp_path: Path, catalog: tuple[Path, Path]) -> None:
    dataset, report = read_catalog(*catalog)
    save_ingested(dataset, report, tmp_path, "books")
    with pytest.raises(DataError) as info:
        load_ingested("films", tmp_path)
    assert str(info.value) == (
        "unknown dataset 'films': use movielens-100k, movielens-small, or a name made by "
        "`recagents ingest` (found: books)"
    )
    with pytest.raises(DataError, match=r"\(found: none\)"):
        load_ingested("films", tmp_path / "empty-home")


def test_incomplete_folder_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    with pytest.raises(DataError, match="lacks interactions.tsv"):
        load_ingested(str(folder))


@pytest.mark.parametrize("name", ["", "../up", "a/b", "-x", "movielens-small", "x" * 101])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        validate_name(name)


def test_good_names_pass() -> None:
    assert validate_name("shop_2024.v1-a") == "shop_2024.v1-a"


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.mark.parametrize(("text", "expected"), [("tab", "\t"), ("\\t", "\t"), (";", ";")])
def test_parse_delimiter(text: str, expected: str) -> None:
    assert parse_delimiter(text) == expected


def test_parse_rating_range() -> None:
    assert parse_rating_range("1,10") == (1.0, 10.0)
    assert parse_rating_range(" 0 : 100 ") == (0.0, 100.0)
    with pytest.raises(ConfigError, match="MIN,MAX"):
        parse_rating_range("10")
    with pytest.raises(ConfigError, match="MIN <= MAX"):
        parse_rating_range("10,1")


def test_report_format_and_dict() -> None:
    report = IngestReport(
        interactions_read=5,
        interactions_kept=4,
        items_read=2,
        items_kept=2,
        duplicate_interactions=1,
        problems=[RowProblem("a.csv", n, "empty item_id") for n in range(2, 5)],
    )
    text = report.format(max_rows=2)

    assert "interactions: 5 read, 4 kept (1 repeat an earlier user-item pair)" in text
    assert "3 bad rows dropped:" in text
    assert "  a.csv:3: empty item_id" in text
    assert "a.csv:4" not in text
    assert "... and 1 more" in text
    assert report.to_dict()["problems"][0] == {
        "file": "a.csv",
        "line": 2,
        "reason": "empty item_id",
    }


def test_newer_format_is_refused(tmp_path: Path, catalog: tuple[Path, Path]) -> None:
    dataset, report = read_catalog(*catalog)
    folder = save_ingested(dataset, report, tmp_path, "future")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    (folder / "meta.json").write_text(json.dumps({**meta, "format": 99}), encoding="utf-8")
    with pytest.raises(DataError, match="newer recagents"):
        load_ingested("future", tmp_path)


def test_bare_carriage_return_line_endings(tmp_path: Path) -> None:
    error = read_error(tmp_path, "user_id,item_id\ru1,i1\r")
    assert "interactions.csv ends its lines with a bare carriage return" in str(error)
