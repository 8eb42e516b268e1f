"""Tag and image encoders of the pseudo-labelling pipeline (thesis 2.4.1), on tiny networks and data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import create_supervised_evaluator
from ignite.metrics import Loss
from PIL import Image
from torch.utils.data import DataLoader

from radtl.networks.autoencoder import ConvAutoencoder, DenseAutoencoder
from radtl.pseudolabel.encoders import ImageEncoder, TagEncoder, load_image, prepare_batch, train_autoencoder

TINY_CAE = {"channels": (4, 8), "bottleneck": 8}


def validation_loss(network: torch.nn.Module, loader: DataLoader) -> float:
    evaluator = create_supervised_evaluator(
        network, metrics={"loss": Loss(torch.nn.MSELoss())}, prepare_batch=prepare_batch
    )
    return evaluator.run(loader).metrics["loss"]


def nearest_centroid_accuracy(embeddings: np.ndarray, labels: np.ndarray) -> float:
    centroids = np.stack([embeddings[labels == k].mean(axis=0) for k in np.unique(labels)])
    distances = ((embeddings[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=-1)
    return float((distances.argmin(axis=1) == labels).mean())


@pytest.fixture
def low_rank_data() -> tuple[torch.Tensor, torch.Tensor]:
    """8 features that are mixtures of 2 latent factors: learnable through a 4-d bottleneck."""
    rng = np.random.default_rng(0)
    data = torch.from_numpy((rng.random((128, 2)) @ rng.random((2, 8)) / 2).astype(np.float32))
    return data[:96], data[96:]


@pytest.fixture
def two_groups() -> tuple[np.ndarray, np.ndarray]:
    """40 rows of 20 [0, 1] features: the first group high on the first half, the second on the second half."""
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 20)
    first_half = np.arange(20) < 10
    X = np.where(first_half[None, :] == (labels[:, None] == 0), 0.9, 0.1) + rng.normal(0, 0.05, (40, 20))
    return np.clip(X, 0, 1), labels


# -- networks -------------------------------------------------------------------------------


def test_conv_autoencoder_reconstruction_has_the_input_shape():
    network = ConvAutoencoder(**TINY_CAE)
    x = torch.rand(2, 1, 16, 16)
    assert network(x).shape == x.shape


def test_conv_autoencoder_latent_is_bottleneck_filters_at_one_over_two_to_the_levels():
    network = ConvAutoencoder(**TINY_CAE)
    assert network.encode(torch.rand(3, 1, 16, 32)).shape == (3, 8, 4, 8)
    assert network.latent_shape((16, 32)) == (8, 4, 8)


def test_conv_autoencoder_rejects_a_size_not_divisible_by_two_to_the_levels():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*2 = 4.*\\(16, 18\\)"):
        ConvAutoencoder(**TINY_CAE)(torch.rand(1, 1, 16, 18))


def test_dense_autoencoder_encodes_to_the_bottleneck_and_reconstructs_the_input_shape():
    network = DenseAutoencoder(20, hidden=(16, 8, 8), bottleneck=4)
    x = torch.rand(5, 20)
    assert network.encode(x).shape == (5, 4)
    assert network(x).shape == (5, 20)


# -- train_autoencoder ----------------------------------------------------------------------


def train_small_autoencoder(data: tuple[torch.Tensor, torch.Tensor], **options) -> dict:
    """Train an 8-16-4 dense autoencoder on ``(train, validation)``; ``options`` go to train_autoencoder."""
    train, validation = data
    torch.manual_seed(0)
    return train_autoencoder(
        DenseAutoencoder(8, hidden=(16,), bottleneck=4),
        DataLoader(train, batch_size=16, shuffle=True),
        DataLoader(validation, batch_size=32),
        progress=False,
        **options,
    )


def test_training_lowers_the_validation_loss_on_learnable_data(low_rank_data):
    history = train_small_autoencoder(low_rank_data, learning_rate=1e-2, max_epochs=10, patience=3)
    losses = history["validation_losses"]
    assert len(losses) == history["epochs"] == 10
    assert losses[-1] < 0.5 * losses[0]


def test_validation_runs_validations_per_epoch_times_per_epoch(low_rank_data):
    history = train_small_autoencoder(
        low_rank_data, learning_rate=1e-3, max_epochs=3, patience=10, validations_per_epoch=2
    )
    assert len(history["validation_losses"]) == 6
    assert not history["stopped_early"]


def test_training_stops_early_when_the_validation_loss_cannot_improve(low_rank_data):
    history = train_small_autoencoder(low_rank_data, learning_rate=0.0, max_epochs=20, patience=2)
    assert history["stopped_early"]
    assert history["epochs"] == 3  # the first validation, then `patience` without improvement
    assert len(set(history["validation_losses"])) == 1


def test_training_ends_with_the_weights_of_the_best_validation_loss():
    # 8 training rows of noise and other noise to validate on: a large learning rate makes the
    # validation loss jump around, so the last validation is not the best one.
    torch.manual_seed(0)
    validation = DataLoader(torch.rand(32, 32), batch_size=32)
    network = DenseAutoencoder(32, hidden=(64,), bottleneck=16)
    history = train_autoencoder(
        network, DataLoader(torch.rand(8, 32), batch_size=8), validation,
        learning_rate=0.1, max_epochs=200, patience=3, progress=False,
    )
    assert history["stopped_early"]
    assert history["validation_losses"][-1] > history["best_validation_loss"]
    assert history["best_validation_loss"] == min(history["validation_losses"])
    assert validation_loss(network, validation) == pytest.approx(history["best_validation_loss"], rel=1e-5)


# -- TagEncoder ----------------------------------------------------------------------------


def tiny_tag_encoder(method: str) -> TagEncoder:
    return TagEncoder(method, dim=2, hidden=(16, 8, 8), batch_size=8, max_epochs=20, patience=3)


@pytest.mark.parametrize("method", ["pca", "autoencoder"])
def test_tag_embeddings_are_float32_rows_of_dim(method, two_groups):
    X, _ = two_groups
    embeddings = tiny_tag_encoder(method).fit_transform(X)
    assert embeddings.shape == (40, 2)
    assert embeddings.dtype == np.float32


@pytest.mark.parametrize("method", ["pca", "autoencoder"])
def test_tag_embeddings_keep_well_separated_groups_apart(method, two_groups):
    X, labels = two_groups
    embeddings = tiny_tag_encoder(method).fit_transform(X)
    assert nearest_centroid_accuracy(embeddings, labels) == 1.0


@pytest.mark.parametrize("method", ["pca", "autoencoder"])
def test_tag_encoder_saved_and_loaded_embeds_identically(method, two_groups, tmp_path):
    X, _ = two_groups
    encoder = tiny_tag_encoder(method).fit(X)
    encoder.save(tmp_path)
    loaded = TagEncoder.load(tmp_path)
    np.testing.assert_array_equal(loaded.transform(X), encoder.transform(X))
    assert loaded.history == encoder.history
    assert (loaded.method, loaded.dim, loaded.in_features) == (method, 2, 20)


def test_tag_autoencoder_history_records_early_stopping_and_pca_has_none(two_groups):
    X, _ = two_groups
    assert set(tiny_tag_encoder("autoencoder").fit(X).history) == {
        "epochs", "best_validation_loss", "validation_losses", "stopped_early"
    }
    assert tiny_tag_encoder("pca").fit(X).history is None


@pytest.mark.parametrize("method", ["pca", "autoencoder"])
def test_tag_encoder_rejects_a_matrix_with_another_feature_count(method, two_groups):
    X, _ = two_groups
    encoder = tiny_tag_encoder(method).fit(X)
    with pytest.raises(ValueError, match="X has 19 features; this TagEncoder was fitted on 20"):
        encoder.transform(X[:, :19])


@pytest.mark.parametrize(
    ("X", "message"),
    [(np.zeros(5), "2-D matrix"), (np.array([[0.5, np.nan]]), "NaN or infinite"), (np.array([["a", "b"]]), "numbers")],
)
def test_tag_encoder_rejects_what_is_not_a_finite_numeric_matrix(X, message):
    with pytest.raises(ValueError, match=message):
        TagEncoder("pca", dim=1).fit(X)


# -- ImageEncoder --------------------------------------------------------------------------


def write_png(path, array: np.ndarray) -> str:
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory) -> list[str]:
    """8 bright discs and 8 horizontal stripe patterns, 32 x 32, with a little noise."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(2)
    rows, cols = np.mgrid[:32, :32]
    disc = np.where((rows - 16) ** 2 + (cols - 16) ** 2 < 100, 220.0, 20.0)
    stripes = np.where(rows // 4 % 2 == 0, 200.0, 40.0)
    return [
        write_png(folder / f"{name}{k}.png", pattern + rng.normal(0, 5, (32, 32)))
        for name, pattern in (("disc", disc), ("stripes", stripes))
        for k in range(8)
    ]


@pytest.fixture(scope="module")
def image_encoder(image_paths) -> ImageEncoder:
    return ImageEncoder(32, **TINY_CAE, learning_rate=1e-3, batch_size=4, max_epochs=2).fit(image_paths)


def test_image_embedding_is_the_flattened_latent_map(image_encoder, image_paths):
    embeddings = image_encoder.transform(image_paths)
    assert image_encoder.dim == 8 * (32 // 4) ** 2
    assert embeddings.shape == (16, image_encoder.dim)
    assert embeddings.dtype == np.float32


def test_image_embedding_is_reduced_to_pca_components_when_set(image_paths):
    encoder = ImageEncoder(16, **TINY_CAE, learning_rate=1e-3, batch_size=8, max_epochs=1, pca_components=3)
    embeddings = encoder.fit_transform(image_paths)
    assert encoder.dim == 3
    assert embeddings.shape == (16, 3)
    assert embeddings.dtype == np.float32


def test_image_transform_is_deterministic(image_encoder, image_paths):
    np.testing.assert_array_equal(image_encoder.transform(image_paths), image_encoder.transform(image_paths))


def test_image_encoder_saved_and_loaded_embeds_identically(image_encoder, image_paths, tmp_path):
    image_encoder.save(tmp_path)
    loaded = ImageEncoder.load(tmp_path)
    np.testing.assert_array_equal(loaded.transform(image_paths), image_encoder.transform(image_paths))
    assert loaded.history == image_encoder.history


def test_image_encoder_names_an_unreadable_image(image_encoder, image_paths, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        image_encoder.transform([*image_paths[:2], str(broken)])


def test_image_encoder_rejects_an_image_size_not_divisible_by_two_to_the_levels():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*len\\(channels\\) = 4"):
        ImageEncoder(30, **TINY_CAE)


def test_a_non_square_image_is_padded_not_stretched(tmp_path):
    path = write_png(tmp_path / "wide.png", np.full((20, 40), 255.0))  # H 20, W 40
    image = load_image(path, 32)
    assert image.shape == (1, 32, 32)
    # 40 -> 32 wide, 20 -> 16 high, centred: rows 8..23 hold the image, the rest is zero padding
    assert image[0, :8].max() == 0 and image[0, 24:].max() == 0
    assert image[0, 8:24].min() == 1.0
