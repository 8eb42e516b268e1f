"""Specification of radtl.pseudolabel.text: report-text embeddings of RadiologyNET (thesis 2.3.2, 2.4.1)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from gensim.models.keyedvectors import pseudorandom_weak_vector
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer

from radtl.pseudolabel.text import (
    CONFIG_FILENAME,
    DOC2VEC_FILENAME,
    METHODS,
    MIN_REPORT_CHARACTERS,
    STEMMERS,
    VECTORIZER_FILENAME,
    TextEmbedder,
    _infer_vector,
    analyze,
    get_stemmer,
    register_stemmer,
    stem_croatian,
    tokenize,
    usable_report,
)

# Three short reports whose stemmed words are counted by hand below (stemmer "croatian"):
#   "koljeno", "koljena", "koljenu" -> "koljen"; "otok", "otoka" -> "otok"; "pluća" -> "pluć";
#   "infiltrata" -> "infiltrat"; "bol", "bez" unchanged; the one-letter "u" is dropped.
HAND_REPORTS = ["Koljeno: otok koljena, bol.", "Bol u koljenu; bez otoka.", "Pluća bez infiltrata, bol."]
HAND_VOCABULARY = ["bez", "bol", "infiltrat", "koljen", "otok", "pluć"]
HAND_COUNTS = [[0, 1, 0, 2, 1, 0],
               [1, 1, 0, 1, 1, 0],
               [1, 1, 1, 0, 0, 1]]
HAND_TOTALS = {"bez": 2, "bol": 3, "infiltrat": 1, "koljen": 3, "otok": 2, "pluć": 1}

KNEE = ["koljeno", "koljena", "koljenu", "menisk", "meniska", "ligament", "patela", "hrskavica", "tetiva"]
LUNG = ["pluća", "plućima", "bronh", "pleura", "infiltrat", "izljev", "sjena", "dijafragma", "hilus"]
FILLER = ["nalaz", "uredan", "bez", "promjena", "vidi", "kontrola", "snimka"]
# Small Doc2Vec models: no frequent-word downsampling (it drops most words of a tiny corpus),
# PV-DM with a short window so the paragraph vector is not drowned by its context words.
SMALL = {"min_count": 2, "vector_size": 12, "window": 2, "epochs": 40, "sample": 0}
DOC2VEC = ("pv-dm", "pv-dbow")


def two_topic_reports(per_topic: int = 30, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Reports of six knee words or six lung words plus three shared filler words; labels 0 (knee) / 1 (lung)."""
    rng = np.random.default_rng(seed)

    def report(topic: list[str]) -> str:
        words = [*rng.choice(topic, 6), *rng.choice(FILLER, 3)]
        return ", ".join(rng.permutation(words)) + "."

    reports = [report(KNEE) for _ in range(per_topic)] + [report(LUNG) for _ in range(per_topic)]
    return reports, np.repeat([0, 1], per_topic)


@pytest.fixture(scope="module")
def topics() -> tuple[list[str], np.ndarray]:
    return two_topic_reports()


@pytest.fixture(scope="module")
def fitted(topics) -> dict[str, TextEmbedder]:
    """One embedder per method, fitted once on the two-topic corpus."""
    reports, _ = topics
    return {method: TextEmbedder(method, **SMALL).fit(reports) for method in METHODS}


@pytest.fixture
def restore_stemmers():
    saved = dict(STEMMERS)
    yield
    STEMMERS.clear()
    STEMMERS.update(saved)


def mean_cosine(vectors: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cosine similarity of distinct pairs with the same label, and of pairs with different labels."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = labels[:, None] == labels[None, :]
    distinct = ~np.eye(len(labels), dtype=bool)
    return float(similarity[same & distinct].mean()), float(similarity[~same].mean())


def reverse_token(token: str) -> str:
    return token[::-1]


# -- tokens -------------------------------------------------------------------------------------


def test_tokenize_casefolds_and_drops_punctuation_and_digits():
    assert tokenize("RTG: Fraktura L2-kralješka (3 mm), T12/L1; st.p.") == ["rtg", "fraktura", "kralješka", "mm", "st"]


def test_tokenize_keeps_croatian_letters():
    assert tokenize("ČAĐA, ćelija, ŠUPLJINA, žuč, Đurđa") == ["čađa", "ćelija", "šupljina", "žuč", "đurđa"]


def test_tokenize_drops_one_letter_tokens():
    assert tokenize("bol u koljenu i kuku s otokom") == ["bol", "koljenu", "kuku", "otokom"]


# -- stemmers -----------------------------------------------------------------------------------


def test_croatian_stemmer_maps_inflected_forms_to_one_stem():
    assert {stem_croatian(word) for word in ["koljeno", "koljena", "koljenu", "koljenom", "koljenima"]} == {"koljen"}
    assert {stem_croatian(word) for word in ["zglob", "zglobovi", "zglobova", "zglobovima"]} == {"zglob"}


def test_croatian_stemmer_strips_the_longest_suffix_that_leaves_three_characters():
    assert stem_croatian("nova") == "nov"  # "-ova" would leave "n"; "-a" leaves "nov"
    assert stem_croatian("oka") == "oka"  # "-a" would leave "ok"
    assert all(len(stem_croatian(word)) >= 3 for word in ["ima", "ovima", "rame", "oko", "uho", "bez"])


def test_get_stemmer_resolves_a_registered_name():
    assert get_stemmer("croatian") is stem_croatian
    assert get_stemmer("none")("koljena") == "koljena"


def test_get_stemmer_returns_a_callable_unchanged():
    assert get_stemmer(reverse_token) is reverse_token


def test_get_stemmer_imports_a_module_function_path():
    assert get_stemmer("os.path:basename") is os.path.basename


def test_get_stemmer_rejects_an_unknown_name_listing_the_registered_ones():
    with pytest.raises(ValueError, match=r"unknown stemmer 'snowball'.*'croatian', 'none'"):
        get_stemmer("snowball")


def test_get_stemmer_rejects_an_import_path_that_does_not_import():
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        get_stemmer("no_such_module:stem")


def test_register_stemmer_makes_a_name_usable_by_the_embedder(restore_stemmers):
    register_stemmer("reverse", reverse_token)
    assert analyze("Koljeno boli", stemmer="reverse") == ["onejlok", "ilob"]


def test_register_stemmer_refuses_to_replace_a_name_silently(restore_stemmers):
    with pytest.raises(ValueError, match="already registered"):
        register_stemmer("croatian", reverse_token)


# -- reports ------------------------------------------------------------------------------------


def test_usable_report_rejects_missing_values_and_reports_shorter_than_five_characters():
    assert MIN_REPORT_CHARACTERS == 5
    reports = [None, math.nan, "", "b.o.", "   b.o.   ", "b.o.?", "Uredan nalaz."]
    assert [usable_report(text) for text in reports] == [False, False, False, False, False, True, True]


def test_fit_rejects_unusable_reports_giving_their_count():
    with pytest.raises(ValueError, match="2 of 4 reports are not usable"):
        TextEmbedder("bow", min_count=1).fit(["Uredan nalaz.", None, "b.o.", "Bol u koljenu."])


def test_fit_rejects_an_empty_vocabulary_naming_min_count():
    with pytest.raises(ValueError, match="min_count=5"):
        TextEmbedder("bow", min_count=5).fit(HAND_REPORTS)


def test_unknown_method_is_rejected_naming_the_methods():
    with pytest.raises(ValueError, match="unknown text embedding method 'lda'.*pv-dbow"):
        TextEmbedder("lda")


def test_transform_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        TextEmbedder("tfidf").transform(["Uredan nalaz."])


# -- vocabulary and bag of words -----------------------------------------------------------------


def test_analyze_gives_the_hand_stemmed_words():
    counted: dict[str, int] = {}
    for report in HAND_REPORTS:
        for word in analyze(report):
            counted[word] = counted.get(word, 0) + 1
    assert counted == HAND_TOTALS


def test_min_count_drops_words_with_fewer_total_occurrences_from_the_bow_vocabulary():
    embedder = TextEmbedder("bow", min_count=2).fit(HAND_REPORTS)
    assert embedder.vocabulary == [word for word in HAND_VOCABULARY if HAND_TOTALS[word] >= 2]


def test_min_count_gives_the_same_vocabulary_for_every_method():
    vocabularies = {method: TextEmbedder(method, min_count=2, vector_size=8, epochs=5).fit(HAND_REPORTS).vocabulary
                    for method in METHODS}
    assert all(vocabulary == ["bez", "bol", "koljen", "otok"] for vocabulary in vocabularies.values()), vocabularies


def test_bow_counts_match_a_hand_count():
    embedder = TextEmbedder("bow", min_count=1)
    vectors = embedder.fit_transform(HAND_REPORTS)
    assert embedder.vocabulary == HAND_VOCABULARY
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, HAND_COUNTS)


def test_tfidf_rows_equal_scikit_learn_given_the_same_vocabulary():
    embedder = TextEmbedder("tfidf", min_count=2)
    vectors = embedder.fit_transform(HAND_REPORTS)
    reference = TfidfVectorizer(analyzer=analyze, vocabulary=embedder.vocabulary).fit_transform(HAND_REPORTS)
    np.testing.assert_allclose(vectors, reference.toarray(), rtol=1e-6)


def test_dim_is_the_vocabulary_size_for_bow_and_vector_size_for_doc2vec(fitted):
    assert fitted["bow"].dim == len(fitted["bow"].vocabulary)
    assert fitted["pv-dbow"].dim == SMALL["vector_size"]
    assert fitted["pv-dbow"].transform(["Uredan nalaz koljena."]).shape == (1, SMALL["vector_size"])


# -- Doc2Vec --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", DOC2VEC)
def test_paragraph_vectors_are_more_similar_within_a_topic_than_across_topics(fitted, topics, method):
    reports, labels = topics
    within, across = mean_cosine(fitted[method].transform(reports), labels)
    assert within > across + 0.3, (within, across)


@pytest.mark.parametrize("method", DOC2VEC)
def test_doc2vec_transform_gives_the_same_vector_for_the_same_text(fitted, method):
    texts = ["Ruptura meniska desnog koljena.", "Infiltrat u plućima, izljev.", "Ruptura meniska desnog koljena."]
    first, again = fitted[method].transform(texts), fitted[method].transform(texts[::-1])
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first, again[::-1])


@pytest.mark.parametrize("method", DOC2VEC)
def test_doc2vec_inference_is_gensims_from_the_same_starting_vector(fitted, method):
    model = fitted[method]._doc2vec
    words = analyze("Ruptura meniska desnog koljena, otok.")
    start = pseudorandom_weak_vector(model.vector_size, seed_string=" ".join(words))
    model.random.seed(0)
    expected = model.infer_vector(words)
    np.testing.assert_array_equal(_infer_vector(model, words, start, seed=0), expected)


def test_doc2vec_fit_transform_equals_fit_then_transform(topics):
    reports, _ = topics
    together = TextEmbedder("pv-dbow", **SMALL).fit_transform(reports[:20])
    apart = TextEmbedder("pv-dbow", **SMALL).fit(reports[:20]).transform(reports[:20])
    np.testing.assert_array_equal(together, apart)


def test_doc2vec_vectors_do_not_depend_on_the_python_hash_seed(fitted, tmp_path):
    texts = ["Ruptura meniska desnog koljena.", "Infiltrat u plućima, izljev."]
    fitted["pv-dbow"].save(tmp_path / "model")
    script = ("import sys, numpy; from radtl.pseudolabel.text import TextEmbedder; "
              "numpy.save(sys.argv[2], TextEmbedder.load(sys.argv[1]).transform(sys.argv[3:]))")
    hash_seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # another str hash than this process
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path / "vectors.npy"), *texts],
                   check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    np.testing.assert_array_equal(np.load(tmp_path / "vectors.npy"), fitted["pv-dbow"].transform(texts))


# -- save / load ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_save_load_round_trip_gives_identical_vectors(fitted, topics, tmp_path, method):
    reports, _ = topics
    folder = fitted[method].save(tmp_path / method)
    model_file = DOC2VEC_FILENAME if method in DOC2VEC else VECTORIZER_FILENAME
    assert sorted(path.name for path in folder.iterdir()) == sorted([CONFIG_FILENAME, model_file])
    loaded = TextEmbedder.load(folder)
    assert (loaded.method, loaded.min_count, loaded.vocabulary) == (method, 2, fitted[method].vocabulary)
    np.testing.assert_array_equal(loaded.transform(reports[:10]), fitted[method].transform(reports[:10]))


def test_save_records_the_stemmer_by_its_import_path(tmp_path):
    embedder = TextEmbedder("bow", min_count=1, stemmer="tests.pseudolabel.test_text:reverse_token").fit(HAND_REPORTS)
    embedder.save(tmp_path)
    assert json.loads((tmp_path / CONFIG_FILENAME).read_text())["stemmer"] == "tests.pseudolabel.test_text:reverse_token"
    np.testing.assert_array_equal(TextEmbedder.load(tmp_path).transform(HAND_REPORTS), embedder.transform(HAND_REPORTS))


def test_save_refuses_an_unregistered_callable_stemmer(tmp_path):
    embedder = TextEmbedder("bow", min_count=1, stemmer=lambda token: token[:4]).fit(HAND_REPORTS)
    with pytest.raises(ValueError, match="unregistered callable.*register_stemmer"):
        embedder.save(tmp_path)


def test_load_names_the_missing_parameters_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=CONFIG_FILENAME):
        TextEmbedder.load(tmp_path)


def test_load_names_the_missing_model_file(tmp_path):
    TextEmbedder("tfidf", min_count=1).fit(HAND_REPORTS).save(tmp_path)
    (tmp_path / VECTORIZER_FILENAME).unlink()
    with pytest.raises(FileNotFoundError, match=VECTORIZER_FILENAME):
        TextEmbedder.load(tmp_path)


def test_load_rejects_a_folder_of_another_format_version(tmp_path):
    TextEmbedder("bow", min_count=1).fit(HAND_REPORTS).save(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILENAME).read_text())
    (tmp_path / CONFIG_FILENAME).write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99"):
        TextEmbedder.load(tmp_path)
