"""Report-text embeddings for RadiologyNET's pseudo-labelling (thesis 2.3.2 and 2.4.1).

RadiologyNET's third data source is the narrative diagnosis, written in Croatian. The thesis
(2.3.2, "Narrative diagnoses") prepares it in four steps, each of which lives here once:

1. reports shorter than 5 characters are dropped (:data:`MIN_REPORT_CHARACTERS`,
   :func:`usable_report`);
2. a report is split into words, punctuation removed (:func:`tokenize`);
3. words are stemmed with a rule-based Croatian stemmer (N. Ljubešić, D. Boras and O. Kubelka,
   "Retrieving information in Croatian: building a simple and efficient rule-based stemmer",
   INFuture 2007, thesis reference [69]); here stemmers are pluggable (:data:`STEMMERS`,
   :func:`get_stemmer`, :func:`register_stemmer`) and the default, :func:`stem_croatian`, is a
   light suffix stripper, not that stemmer;
4. words rarer than a minimum frequency are left out of the vocabulary.

Thesis 2.4.1 then embeds the reports with Bag of Words, TF-IDF, and Doc2Vec's PV-DM and PV-DBOW
(:class:`TextEmbedder`), searching minimum word frequency 5..5000, embedding size 10..1000, window
5/7/10 and 25/50/100 epochs (Table 2.3). The best text extractor (Table 2.4) was PV-DBOW with
minimum word frequency 50, 1000 dimensions, window 7 and 50 epochs::

    embedder = TextEmbedder("pv-dbow", min_count=50, vector_size=1000, window=7, epochs=50)
    vectors = embedder.fit_transform([r for r in reports if usable_report(r)])
    embedder.save("text_model")

A folder written by :meth:`TextEmbedder.save` holds pickles (joblib / gensim): load only folders
you trust.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import gensim
import joblib
import numpy as np
import sklearn
from gensim.models.doc2vec import Doc2Vec, TaggedDocument
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from radtl.atomic import write_atomic, write_json_atomic
from radtl.pseudolabel.persistence import check_saved_format

__all__ = [
    "CONFIG_FILENAME",
    "DOC2VEC_FILENAME",
    "FORMAT_VERSION",
    "METHODS",
    "MIN_REPORT_CHARACTERS",
    "STEMMERS",
    "VECTORIZER_FILENAME",
    "TextEmbedder",
    "analyze",
    "get_stemmer",
    "register_stemmer",
    "stem_croatian",
    "tokenize",
    "usable_report",
]

#: Reports with fewer characters (after stripping white space) were dropped by the study (thesis 2.3.2).
MIN_REPORT_CHARACTERS = 5
#: The four text embeddings of thesis 2.4.1: Bag of Words, TF-IDF, Doc2Vec PV-DM and PV-DBOW.
METHODS = ("bow", "tfidf", "pv-dm", "pv-dbow")
#: Version of the folder layout :meth:`TextEmbedder.save` writes; :meth:`TextEmbedder.load` reads only this one.
FORMAT_VERSION = 1
#: The parameters file of a saved :class:`TextEmbedder`.
CONFIG_FILENAME = "text_embedder.json"
#: The fitted scikit-learn vectorizer of a saved ``bow`` / ``tfidf`` embedder (joblib).
VECTORIZER_FILENAME = "vectorizer.joblib"
#: The trained gensim model of a saved ``pv-dm`` / ``pv-dbow`` embedder (``Doc2Vec.save``).
DOC2VEC_FILENAME = "doc2vec.model"
_FORMAT_NAME = "radtl.pseudolabel.TextEmbedder"

# Letters only: \w without digits and underscore. Unicode-aware, so č ć đ š ž are letters.
_WORD = re.compile(r"[^\W\d_]+")


# --------------------------------------------------------------------------------------------
# Reports and tokens
# --------------------------------------------------------------------------------------------


def usable_report(text: Any) -> bool:
    """Whether a report enters the text pipeline: a string of at least :data:`MIN_REPORT_CHARACTERS`.

    None, NaN (a missing cell of a table) and any other non-string are not usable, nor is a string
    shorter than 5 characters once leading and trailing white space is stripped (thesis 2.3.2).
    """
    return isinstance(text, str) and len(text.strip()) >= MIN_REPORT_CHARACTERS


def tokenize(text: str) -> list[str]:
    """Split a report into lower-case word tokens (thesis 2.3.2, step i).

    The text is case-folded (:meth:`str.casefold`) and split into maximal runs of Unicode letters,
    so punctuation, digits and underscores separate tokens and are dropped; Croatian letters
    (č ć đ š ž) are letters. One-letter tokens (e.g. the conjunctions "i", "a", "u") are dropped.
    """
    return [token for token in _WORD.findall(text.casefold()) if len(token) > 1]


# --------------------------------------------------------------------------------------------
# Stemmers
# --------------------------------------------------------------------------------------------

# Inflectional endings of Croatian nouns and adjectives, stripped once, longest first.
_CROATIAN_SUFFIXES = tuple(sorted(
    ("ovima", "evima", "ama", "ima", "ovi", "evi", "ova", "eva", "ove", "eve",
     "om", "em", "og", "ih", "im", "oj", "a", "e", "i", "o", "u"),
    key=len, reverse=True,
))
_CROATIAN_MIN_STEM = 3


def _no_stemming(token: str) -> str:
    """The identity: tokens are used as they are."""
    return token


def stem_croatian(token: str) -> str:
    """A light rule-based Croatian stemmer: strip the longest matching inflectional suffix.

    The suffixes are case endings of nouns and adjectives (``-ovima -evima -ama -ima -ovi -evi
    -ova -eva -ove -eve -om -em -og -ih -im -oj -a -e -i -o -u``); the longest one that leaves a
    stem of at least 3 characters is removed, once, so "koljena", "koljeno", "koljenu" and
    "koljenom" all become "koljen", and a token of 3 characters or fewer is returned unchanged.

    RadiologyNET used the rule-based Croatian stemmer of Ljubešić, Boras and Kubelka (2007;
    thesis 2.3.2, reference [69]), which also handles verbs, comparatives and stem alternations.
    This function is a dependency-free default, not that stemmer; plug in your own with
    :func:`register_stemmer` or an import path (see :func:`get_stemmer`).
    """
    for suffix in _CROATIAN_SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= _CROATIAN_MIN_STEM:
            return token[: -len(suffix)]
    return token


#: Stemmers by name: ``"none"`` (identity) and ``"croatian"`` (:func:`stem_croatian`). Extend with
#: :func:`register_stemmer`; a saved :class:`TextEmbedder` records its stemmer by this name.
STEMMERS: dict[str, Callable[[str], str]] = {"none": _no_stemming, "croatian": stem_croatian}


def register_stemmer(name: str, function: Callable[[str], str], *, overwrite: bool = False) -> None:
    """Add a stemmer (a function from one token to its stem) to :data:`STEMMERS` under ``name``.

    A registered stemmer can be given to :class:`TextEmbedder` by name and is saved by name; the
    process that loads the embedder must register the same name first.

    Args:
        name: the registry key; a non-empty string without ``":"`` (that marks an import path).
        function: the stemmer, a callable taking and returning a ``str``.
        overwrite: replace a stemmer already registered under ``name`` instead of raising.

    Raises:
        ValueError: ``name`` is empty, contains ``":"``, or is taken and ``overwrite`` is False.
        TypeError: ``function`` is not callable.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a stemmer name must be a non-empty string without ':', got {name!r}")
    if not callable(function):
        raise TypeError(f"stemmer {name!r} must be callable, got {type(function).__name__}")
    if not overwrite and name in STEMMERS and STEMMERS[name] is not function:
        raise ValueError(f"a stemmer named {name!r} is already registered; pass overwrite=True to replace it")
    STEMMERS[name] = function


def _import_stemmer(path: str) -> Callable[[str], str]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"stemmer import path {path!r} must read 'package.module:function'")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"stemmer import path {path!r}: cannot import module {module_name!r} ({error})") from error
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError as error:
            raise ValueError(f"stemmer import path {path!r}: {module_name!r} has no attribute {attribute!r}") from error
    if not callable(found):
        raise TypeError(f"stemmer import path {path!r} names a {type(found).__name__}, not a function")
    return found


def get_stemmer(spec: str | Callable[[str], str]) -> Callable[[str], str]:
    """Resolve a stemmer given by registry name, as a callable, or as an import path.

    Args:
        spec: a key of :data:`STEMMERS` (``"croatian"``, ``"none"``, or a registered name); a
            callable from token to stem, returned as it is; or ``"package.module:function"``,
            imported with :mod:`importlib` (``"os.path:basename"`` style).

    Raises:
        ValueError: an unknown name (the message lists the registered ones), or an import path that
            does not import.
        TypeError: ``spec`` is neither a string nor a callable, or its import path names no callable.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a stemmer is a registry name, an import path or a callable, got {type(spec).__name__}")
    if spec in STEMMERS:
        return STEMMERS[spec]
    if ":" in spec:
        return _import_stemmer(spec)
    registered = ", ".join(repr(name) for name in sorted(STEMMERS))
    raise ValueError(
        f"unknown stemmer {spec!r}: registered stemmers are {registered}; "
        "or pass a callable, or an import path 'package.module:function'"
    )


def _stemmer_name(spec: str | Callable[[str], str]) -> str | None:
    """The string that :func:`get_stemmer` resolves back to ``spec``, or None for an unregistered callable."""
    if isinstance(spec, str):
        return spec
    for name, function in STEMMERS.items():
        if function is spec:
            return name
    return None


def analyze(text: str, stemmer: str | Callable[[str], str] = "croatian") -> list[str]:
    """Tokenize and stem one report: the words every method of :class:`TextEmbedder` sees.

    Args:
        text: the report.
        stemmer: a stemmer as :func:`get_stemmer` accepts it.
    """
    return _Analyzer(stemmer)(text)


class _Analyzer:
    """Tokenize and stem (:func:`analyze`), as scikit-learn's ``analyzer=``; pickles its stemmer by name only."""

    def __init__(self, stemmer: str | Callable[[str], str]) -> None:
        self.stemmer = stemmer
        self._stem = get_stemmer(stemmer)

    def __call__(self, text: str) -> list[str]:
        # A stemmer may map a token to "": such a token is dropped, not counted as a word.
        return [stemmed for stemmed in map(self._stem, tokenize(text)) if stemmed]

    def __getstate__(self) -> dict[str, Any]:
        return {"stemmer": _stemmer_name(self.stemmer) or self.stemmer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["stemmer"])


# --------------------------------------------------------------------------------------------
# Doc2Vec inference
# --------------------------------------------------------------------------------------------


def _starting_vector(words: Sequence[str], vector_size: int, seed: int) -> np.ndarray:
    """The initial document vector for inference, shape ``(1, vector_size)``, float32.

    gensim's ``Doc2Vec.infer_vector`` draws it from a generator seeded with Python's ``hash`` of
    the text, which is salted per process (``PYTHONHASHSEED``), so the same text gets a different
    vector in another process. This draws it the same way (uniform in ``[-0.5, 0.5) / size``) from
    a stable CRC-32 of the text and ``seed``.
    """
    key = zlib.crc32(" ".join(words).encode("utf-8"), seed & 0xFFFFFFFF)
    generator = np.random.Generator(np.random.SFC64(key))
    return ((generator.random(vector_size).astype(np.float32) - 0.5) / vector_size).reshape(1, vector_size)


def _infer_vector(model: Doc2Vec, words: list[str], start: np.ndarray, seed: int) -> np.ndarray:
    """gensim's ``Doc2Vec.infer_vector`` loop from a given starting vector, with ``model.random`` seeded.

    The same words, starting vector and seed give the same vector: the starting vector replaces
    gensim's per-process one (:func:`_starting_vector`), and seeding ``model.random`` fixes the
    negative samples and window reductions drawn during inference.
    """
    from gensim.models.doc2vec_inner import train_document_dbow, train_document_dm

    vector = np.array(start, dtype=np.float32, copy=True).reshape(1, model.dv.vector_size)
    lock = np.ones(1, dtype=np.float32)
    work = np.zeros(model.layer1_size, dtype=np.float32)
    alpha, min_alpha, epochs = model.alpha, model.min_alpha, model.epochs
    alpha_delta = (alpha - min_alpha) / max(epochs - 1, 1)
    model.random.seed(seed)
    for _ in range(epochs):
        if model.dm:
            neu1 = gensim.matutils.zeros_aligned(model.layer1_size, dtype=np.float32)
            train_document_dm(model, words, [0], alpha, work, neu1, learn_words=False, learn_hidden=False,
                              doctag_vectors=vector, doctags_lockf=lock)
        else:
            train_document_dbow(model, words, [0], alpha, work, learn_words=False, learn_hidden=False,
                                doctag_vectors=vector, doctags_lockf=lock)
        alpha -= alpha_delta
    return vector[0]


# --------------------------------------------------------------------------------------------
# TextEmbedder
# --------------------------------------------------------------------------------------------


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class TextEmbedder:
    """One of the four report-text embeddings of RadiologyNET (thesis 2.4.1), fitted on a corpus.

    - ``"bow"``: Bag of Words, the count of each vocabulary word in the report
      (:class:`~sklearn.feature_extraction.text.CountVectorizer`);
    - ``"tfidf"``: TF-IDF, those counts weighted by inverse document frequency and L2-normalised
      (:class:`~sklearn.feature_extraction.text.TfidfVectorizer`, its defaults);
    - ``"pv-dm"`` / ``"pv-dbow"``: Doc2Vec's Paragraph Vector, Distributed Memory (predict a word
      from the paragraph vector and its context window) or Distributed Bag of Words (predict the
      paragraph's words from the paragraph vector alone), trained with gensim.

    Every method sees the words of :func:`analyze` (:func:`tokenize`, then the stemmer), and every
    method uses the same vocabulary: the (stemmed) words occurring at least ``min_count`` times in
    total in the training corpus, gensim's meaning of ``min_count``. The bow / tfidf columns follow
    :attr:`vocabulary`, sorted alphabetically.

    A Doc2Vec report vector is always inferred (``transform``), for training and new reports alike,
    so :meth:`fit_transform` equals :meth:`fit` then :meth:`transform` and a report gets the same
    vector whether or not it was in the training corpus; the per-document vectors learnt during
    training are not returned. Inference runs the model's ``epochs`` from a starting vector and a
    random state both fixed by the report's words and ``seed``, so it is deterministic, also across
    processes. Training is deterministic with ``workers=1``.

    The study's search ranges are in thesis Table 2.3; its best text extractor (Table 2.4) was
    PV-DBOW with minimum word frequency 50, 1000 dimensions, window 7 and 50 epochs. gensim's pure
    PV-DBOW (as here) trains no word vectors, so ``window`` has no effect on ``"pv-dbow"``.

    Args:
        method: ``"bow"``, ``"tfidf"``, ``"pv-dm"`` or ``"pv-dbow"``.
        min_count: minimum total number of occurrences of a (stemmed) word in the training corpus.
        vector_size: Doc2Vec embedding size (bow / tfidf have one dimension per vocabulary word).
        window: Doc2Vec context window, words on each side of the predicted word (PV-DM).
        epochs: Doc2Vec training epochs, also the inference epochs of :meth:`transform`.
        sample: Doc2Vec downsampling threshold of frequent words (gensim's default, which the study
            does not report); 0 turns it off, as a corpus of a few hundred reports needs.
        stemmer: a stemmer as :func:`get_stemmer` accepts it; saved by name or import path.
        seed: seed of Doc2Vec training and inference.
        workers: gensim worker threads for training; 1 makes training deterministic.

    Raises:
        ValueError: an unknown ``method`` or stemmer, a non-positive integer parameter, or ``sample``
            outside [0, 1).
    """

    def __init__(
        self,
        method: str = "pv-dbow",
        *,
        min_count: int = 5,
        vector_size: int = 100,
        window: int = 5,
        epochs: int = 50,
        sample: float = 1e-3,
        stemmer: str | Callable[[str], str] = "croatian",
        seed: int = 0,
        workers: int = 1,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown text embedding method {method!r}; choose one of {', '.join(METHODS)}")
        self.method = method
        self.min_count = _positive_int("min_count", min_count)
        self.vector_size = _positive_int("vector_size", vector_size)
        self.window = _positive_int("window", window)
        self.epochs = _positive_int("epochs", epochs)
        self.workers = _positive_int("workers", workers)
        if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 <= sample < 1:
            raise ValueError(f"sample must be a number in [0, 1), got {sample!r}")
        self.sample = float(sample)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.stemmer = stemmer
        self._analyzer = _Analyzer(stemmer)
        self._vectorizer: CountVectorizer | None = None
        self._doc2vec: Doc2Vec | None = None

    def __repr__(self) -> str:
        return (f"TextEmbedder({self.method!r}, min_count={self.min_count}, vector_size={self.vector_size}, "
                f"window={self.window}, epochs={self.epochs}, sample={self.sample}, stemmer={self.stemmer!r}, seed={self.seed}, "
                f"workers={self.workers})")

    @property
    def is_doc2vec(self) -> bool:
        """Whether the method is a Doc2Vec paragraph vector (``"pv-dm"`` or ``"pv-dbow"``)."""
        return self.method in ("pv-dm", "pv-dbow")

    # -- fitting --------------------------------------------------------------------------------

    def fit(self, texts: Sequence[str]) -> TextEmbedder:
        """Build the vocabulary and fit the vectorizer or train the Doc2Vec model on ``texts``.

        Raises:
            ValueError: ``texts`` is empty or holds reports that are not :func:`usable_report`
                (the message gives how many), or no word occurs ``min_count`` times.
        """
        texts = list(texts)
        if not texts:
            raise ValueError("cannot fit a TextEmbedder on no reports")
        unusable = sum(not usable_report(text) for text in texts)
        if unusable:
            raise ValueError(
                f"{unusable} of {len(texts)} reports are not usable (None, NaN, not a string, or shorter than "
                f"{MIN_REPORT_CHARACTERS} characters after stripping); drop them with usable_report() first"
            )
        documents = [self._analyzer(text) for text in texts]
        counts = Counter(word for words in documents for word in words)
        vocabulary = sorted(word for word, count in counts.items() if count >= self.min_count)
        if not vocabulary:
            raise ValueError(
                f"no word occurs at least min_count={self.min_count} times in the {len(texts)} reports "
                f"({len(counts)} distinct words); lower min_count or fit on more reports"
            )
        self._vectorizer, self._doc2vec = None, None
        if self.is_doc2vec:
            corpus = [TaggedDocument(words, [index]) for index, words in enumerate(documents)]
            self._doc2vec = Doc2Vec(
                corpus,
                dm=1 if self.method == "pv-dm" else 0,
                vector_size=self.vector_size,
                window=self.window,
                min_count=self.min_count,
                epochs=self.epochs,
                sample=self.sample,
                seed=self.seed,
                workers=self.workers,
            )
        else:
            vectorizer_class = TfidfVectorizer if self.method == "tfidf" else CountVectorizer
            self._vectorizer = vectorizer_class(analyzer=self._analyzer, vocabulary=vocabulary, lowercase=False,
                                                token_pattern=None, dtype=np.float32)
            self._vectorizer.fit(texts)
        return self

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`fit` on ``texts``, then :meth:`transform` them (for Doc2Vec too: inferred, not trained, vectors)."""
        texts = list(texts)
        return self.fit(texts).transform(texts)

    # -- applying -------------------------------------------------------------------------------

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        """Embed reports: a dense float32 array of shape ``(len(texts), dim)``.

        Words outside the vocabulary are ignored; a report with none in it gets a row of zeros (bow,
        tfidf) or the Doc2Vec starting vector, small and random. Filter reports with
        :func:`usable_report` first, as :meth:`fit` requires.

        Raises:
            sklearn.exceptions.NotFittedError: before :meth:`fit`.
            ValueError: some ``texts`` are not strings (the message gives how many).
        """
        self._check_fitted()
        texts = list(texts)
        not_strings = sum(not isinstance(text, str) for text in texts)
        if not_strings:
            raise ValueError(f"{not_strings} of {len(texts)} reports are not strings; drop them with usable_report()")
        if self._vectorizer is not None:
            return np.asarray(self._vectorizer.transform(texts).toarray(), dtype=np.float32)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = self._analyzer(text)
            start = _starting_vector(words, self.dim, self.seed)
            vectors[row] = _infer_vector(self._doc2vec, words, start, self.seed)
        return vectors

    @property
    def dim(self) -> int:
        """The embedding size: ``vector_size`` for Doc2Vec, the vocabulary size for bow / tfidf."""
        self._check_fitted()
        return self._doc2vec.vector_size if self._doc2vec is not None else len(self._vectorizer.vocabulary_)

    @property
    def vocabulary(self) -> list[str]:
        """The (stemmed) words kept by ``min_count``, sorted; the bow / tfidf columns in order."""
        self._check_fitted()
        if self._doc2vec is not None:
            return sorted(self._doc2vec.wv.index_to_key)
        return list(self._vectorizer.get_feature_names_out())

    def _check_fitted(self) -> None:
        if self._vectorizer is None and self._doc2vec is None:
            raise NotFittedError("this TextEmbedder is not fitted yet; call fit() first")

    # -- persistence ----------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the fitted embedder to ``folder`` (created if needed); returns the folder.

        The folder holds :data:`CONFIG_FILENAME` (method, parameters, stemmer name or import path,
        format and library versions) and :data:`VECTORIZER_FILENAME` (bow / tfidf, joblib) or
        :data:`DOC2VEC_FILENAME` (Doc2Vec, gensim's ``save`` in one file). The model file is written
        first and the parameters file last, each to a temporary name and renamed.

        Raises:
            sklearn.exceptions.NotFittedError: before :meth:`fit`.
            ValueError: the stemmer is a callable that is not in :data:`STEMMERS`, so could not be
                found again by :meth:`load`.
        """
        self._check_fitted()
        stemmer = _stemmer_name(self.stemmer)
        if stemmer is None:
            raise ValueError(
                f"cannot save a TextEmbedder whose stemmer {self.stemmer!r} is an unregistered callable: "
                "register it with register_stemmer(name, function) or pass it as 'package.module:function'"
            )
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self._doc2vec is not None:
            # one file, so the rename moves all of it
            write_atomic(folder / DOC2VEC_FILENAME, lambda tmp: self._doc2vec.save(str(tmp), separately=[]))
        else:
            write_atomic(folder / VECTORIZER_FILENAME, lambda tmp: joblib.dump(self._vectorizer, tmp, compress=3))
        config = {
            "format": _FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "min_count": self.min_count,
            "vector_size": self.vector_size,
            "window": self.window,
            "epochs": self.epochs,
            "sample": self.sample,
            "stemmer": stemmer,
            "seed": self.seed,
            "workers": self.workers,
            "gensim_version": gensim.__version__,
            "sklearn_version": sklearn.__version__,
        }
        write_json_atomic(folder / CONFIG_FILENAME, config, indent=2, ensure_ascii=False)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TextEmbedder:
        """Read an embedder written by :meth:`save` (a trusted folder: its model file is a pickle).

        A stemmer saved by a registered name must be registered in this process too.

        Raises:
            FileNotFoundError: the folder lacks :data:`CONFIG_FILENAME` or the model file.
            ValueError: the parameters file is not a saved TextEmbedder, was written in another
                format version, or names a stemmer that cannot be found.
        """
        folder = Path(folder)
        config_file = folder / CONFIG_FILENAME
        if not config_file.is_file():
            raise FileNotFoundError(f"{config_file} not found: {folder} is not a folder written by TextEmbedder.save")
        try:
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{config_file} is not valid JSON ({error})") from error
        check_saved_format(config, config_file, "TextEmbedder", _FORMAT_NAME, FORMAT_VERSION)
        try:
            embedder = cls(
                config["method"],
                min_count=config["min_count"],
                vector_size=config["vector_size"],
                window=config["window"],
                epochs=config["epochs"],
                sample=config["sample"],
                stemmer=config["stemmer"],
                seed=config["seed"],
                workers=config["workers"],
            )
        except KeyError as error:
            raise ValueError(f"{config_file} lacks the parameter {error.args[0]!r}") from error
        except ValueError as error:
            raise ValueError(f"{config_file}: {error}") from error
        model_file = folder / (DOC2VEC_FILENAME if embedder.is_doc2vec else VECTORIZER_FILENAME)
        if not model_file.is_file():
            raise FileNotFoundError(f"{model_file} not found: the {embedder.method} model of {config_file} is missing")
        if embedder.is_doc2vec:
            embedder._doc2vec = Doc2Vec.load(str(model_file))
        else:
            embedder._vectorizer = joblib.load(model_file)
        return embedder
