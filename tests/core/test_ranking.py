"""A ``glassbox rank`` CSV read back, and a review session ordered by it (no model needed)."""

from __future__ import annotations


import pytest

from data_paths import copy_dev_val, split_ids
from glassbox_xai.batch.resume import write_csv
from glassbox_xai.hitl.ranking import HEADER, RankingError, ranking_rows, read_ranking
from glassbox_xai.hitl.session import ReviewSession
from glassbox_xai.hitl.store import RetrainingSet


@pytest.fixture
def folder(tmp_path):
    """Three real dev_val photographs (part of a larger archive)."""
    copy_dev_val(tmp_path / "photos", 3, masks=False)
    return tmp_path / "photos"


@pytest.fixture
def ranking(tmp_path):
    """An archive ranking: the folder's second and third images and one image elsewhere."""
    a, b, c = split_ids("dev_val")[:3]
    records = [{"id": b, "image": f"/archive/{b}.jpg", "boundary": 0.2, "mc_dropout": 0.1},
               {"id": "ISIC_0099999", "image": "/archive/elsewhere.jpg", "boundary": 0.9, "mc_dropout": 0.5},
               {"id": c, "image": f"/archive/{c}.jpg", "boundary": 0.6, "mc_dropout": 0.2}]
    return write_csv(tmp_path / "rank.csv", HEADER, ranking_rows(records))


def test_ranking_round_trips_most_uncertain_first(ranking):
    _, b, c = split_ids("dev_val")[:3]
    assert read_ranking(ranking) == [("ISIC_0099999", 0.7), (c, 0.4), (b, 0.15)]


def test_review_session_follows_an_archive_ranking_and_keeps_its_place(folder, ranking, tmp_path):
    a, b, c = split_ids("dev_val")[:3]
    store = RetrainingSet(tmp_path / "set")
    session = ReviewSession(folder, store, ranking=ranking)
    assert session.order == [c, b, a]  # ranked ones first; the unranked one last; the other folder's id ignored
    assert session.scores == {c: 0.4, b: 0.15} and session.ordered_by == "uncertainty"
    session.go(1)
    again = ReviewSession(folder, store, ranking=ranking)
    assert again.resumed and again.current.id == b


@pytest.mark.parametrize("text, message", [("id,value\nx,1\n", "expected those of glassbox rank"),
                                           ("rank,id,score\n1,x,high\n", "line 2: score 'high' is not a number")])
def test_a_ranking_that_is_not_ours_names_the_problem(tmp_path, text, message):
    path = tmp_path / "rank.csv"
    path.write_text(text)
    with pytest.raises(RankingError, match=message):
        read_ranking(path)


def test_a_ranking_of_other_images_is_refused_with_what_was_expected(folder, tmp_path):
    records = [{"id": "ISIC_0099999", "image": "/archive/elsewhere.jpg", "boundary": 0.9, "mc_dropout": 0.5}]
    other = write_csv(tmp_path / "other.csv", HEADER, ranking_rows(records))
    with pytest.raises(RankingError, match="none of the images in .* is ranked in .*other.csv"):
        ReviewSession(folder, RetrainingSet(tmp_path / "set"), ranking=other)
