"""ViT position embeddings at any input size: resizing, masked patches, and checkpoints built for another size."""

from __future__ import annotations

import pytest
import torch

from radtl.networks import create, load_pretrained, resize_position_embeddings

pytestmark = pytest.mark.usefixtures("one_thread")


def vit_tiny(img_size: int = 32, patch_size: int = 8, **kwargs):
    torch.manual_seed(0)
    return create("vit_tiny", in_channels=1, img_size=img_size, patch_size=patch_size, **kwargs).eval()


def test_resizing_to_the_same_grid_returns_the_embeddings_themselves():
    embeddings = torch.randn(1, 16, 8)
    assert resize_position_embeddings(embeddings, (4, 4)) is embeddings


def test_resizing_gives_the_new_grid_and_keeps_a_constant_embedding():
    constant = torch.full((1, 16, 8), 0.5)
    resized = resize_position_embeddings(constant, (8, 6))
    assert resized.shape == (1, 48, 8)
    torch.testing.assert_close(resized, torch.full((1, 48, 8), 0.5))


def test_resizing_reads_the_embeddings_row_major():
    # Rows of a 2 x 4 grid hold 0 and 1: resized to 4 x 4, the top rows stay 0-ish and the bottom 1-ish.
    rows = torch.tensor([0.0] * 4 + [1.0] * 4).reshape(1, 8, 1)
    resized = resize_position_embeddings(rows, (4, 4), old_grid=(2, 4)).reshape(4, 4)
    assert (resized[0] < 0.1).all() and (resized[-1] > 0.9).all()
    torch.testing.assert_close(resized[:, 0], resized[:, 3])


def test_embeddings_that_are_not_a_square_grid_need_their_old_grid():
    with pytest.raises(ValueError, match="not a square grid"):
        resize_position_embeddings(torch.randn(1, 12, 8), (4, 4))


def test_patch_embedding_at_the_built_size_is_monais_patch_embedding_block():
    model = vit_tiny()
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.embed_patches(image), model.patch_embedding(image))


@pytest.mark.parametrize("side", [96, 224])
def test_a_model_built_for_224_runs_at_other_multiples_of_its_patch(side):
    model = vit_tiny(img_size=224, patch_size=16, num_classes=3)
    image = torch.rand(1, 1, side, side)
    with torch.no_grad():
        assert model(image).shape == (1, 3)
        assert model.forward_tokens(image).shape == (1, 1 + (side // 16) ** 2, 192)


def test_feature_maps_follow_the_input_size_not_the_built_size():
    model = vit_tiny(num_classes=0)
    with torch.no_grad():
        maps = model.feature_maps(torch.rand(1, 1, 64, 64))
    assert [tuple(m.shape[-2:]) for m in maps] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]


def test_an_input_side_that_is_not_a_multiple_of_the_patch_size_is_refused():
    model = vit_tiny(img_size=224, patch_size=16)
    with pytest.raises(ValueError, match="multiples of the patch size 16"):
        model(torch.rand(1, 1, 90, 90))


def test_masked_patches_become_the_mask_token_before_positions_are_added():
    model = vit_tiny()
    image = torch.rand(1, 1, 32, 32)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, 5] = True
    token = torch.randn(1, 1, 192)
    with torch.no_grad():
        plain = model.embed_patches(image)
        masked = model.embed_patches(image, mask, token)
    positions = model.patch_embedding.position_embeddings
    torch.testing.assert_close(masked[0, 5], token[0, 0] + positions[0, 5])
    torch.testing.assert_close(masked[0, ~mask[0]], plain[0, ~mask[0]])


def test_an_all_false_mask_changes_no_token():
    model = vit_tiny()
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_tokens(image, torch.zeros(2, 16, dtype=torch.bool), torch.randn(1, 1, 192)),
            model.forward_tokens(image),
        )


def test_a_mask_without_a_mask_token_is_refused():
    with pytest.raises(ValueError, match="mask_token"):
        vit_tiny().forward_tokens(torch.rand(1, 1, 32, 32), torch.zeros(1, 16, dtype=torch.bool))


def test_a_checkpoint_built_for_32_loads_into_a_model_built_for_64_with_positions_resized():
    small = vit_tiny(img_size=32)
    large = vit_tiny(img_size=64)
    report = load_pretrained(large, small.state_dict())
    key = "patch_embedding.position_embeddings"
    assert report.complete
    assert report.adapted == [key] and report.resized == [key]
    assert sorted(report.loaded + report.adapted) == sorted(large.state_dict())
    assert "1 position embeddings resized" in str(report)
    expected = resize_position_embeddings(small.state_dict()[key], (8, 8))
    torch.testing.assert_close(large.state_dict()[key], expected)
    with torch.no_grad():
        assert large(torch.rand(1, 1, 64, 64)).shape == (1, 1000)


def test_a_backbone_prefix_is_read_for_the_position_embeddings_too():
    small = vit_tiny(img_size=32, num_classes=0)
    checkpoint = {f"backbone.{key}": value for key, value in small.state_dict().items()}
    report = load_pretrained(vit_tiny(img_size=64, num_classes=2), checkpoint)
    assert report.resized == ["patch_embedding.position_embeddings"]
    assert sorted(report.missing) == ["classification_head.bias", "classification_head.weight"]
    assert not report.unexpected and not report.mismatched


def test_a_scripted_model_runs_at_another_size():
    model = vit_tiny(num_classes=2)
    image = torch.rand(1, 1, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(image), model(image))
