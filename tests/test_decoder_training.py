"""Click-trained decoder: the trainer on a tiny synthetic set (loss falls, frozen encoder untouched, card written),
SAM's losses, the decoder file's hash and backbone checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.decoder.data import DecoderDataConfig, select_cases
from monai_baldsam.decoder.losses import decoder_loss, mask_ious, mask_losses
from monai_baldsam.decoder.training import DecoderTrainConfig, train_decoder
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.sam.checkpoints import CheckpointError
from monai_baldsam.sam.decoders import apply_decoder


def _synthetic_folder(root: Path, n: int = 8) -> Path:
    """Bright rectangles on noise: a decoder can learn them from clicks in a few dozen steps."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        h, w = 48, 48
        y0, x0 = rng.integers(3, 20), rng.integers(3, 20)
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[y0:y0 + 18, x0:x0 + 20] = 255
        image = (rng.random((h, w)) * 60 + mask * 0.6).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"case_{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"case_{i}.png")
    return root


def test_mask_losses_and_multimask_rule() -> None:
    target = torch.zeros((1, 8, 8))
    target[0, :4] = 1
    valid = torch.ones((1, 8, 8), dtype=torch.bool)
    good, bad = target[:, None] * 20 - 10, 10 - target[:, None] * 20
    losses = mask_losses(torch.cat([bad, good], dim=1), target, valid)
    assert losses.shape == (1, 2) and losses[0, 1] < 0.01 < losses[0, 0]
    ious = mask_ious(torch.cat([bad, good], dim=1), target, valid)
    assert ious.tolist() == [[0.0, 1.0]]
    loss, best = decoder_loss(torch.cat([bad, good], dim=1), torch.tensor([[0.0, 1.0]]), target, valid)
    assert int(best[0]) == 1 and float(loss) < 0.01  # the best mask carries the loss; the IoU head is exact
    valid[0, 4:] = False
    assert mask_losses(torch.full((1, 1, 8, 8), 10.0), target, valid)[0, 0] < 0.01  # padding does not count


def test_train_decoder_on_tiny_vit_learns_clicks_and_leaves_the_encoder_alone(tiny_vit, tmp_path) -> None:
    folder = _synthetic_folder(tmp_path / "synthetic")
    encoder_before = {k: v.clone() for k, v in tiny_vit.image_encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in tiny_vit.mask_decoder.state_dict().items()}
    config = DecoderTrainConfig(batch_size=4, lr=2e-3, warmup_steps=2, max_steps=40, eval_every=20, max_rounds=3,
                                val_rounds=3, time_budget_s=300)
    data = DecoderDataConfig(folders=(str(folder),), val_fraction=0.25, seed=0)
    logs: list[str] = []
    result = train_decoder(data, tmp_path / "out" / "dec.pt", config, backbone=tiny_vit,
                           store=EmbeddingStore(tmp_path / "store"), encoder="torch", progress=False,
                           log=logs.append)
    card = json.loads(result.card_path.read_text())
    assert card["decoder_sha256"] == result.card["decoder_sha256"] and card["stop_reason"] == "max_steps"
    assert {d["name"] for d in card["data"]["train"]}.isdisjoint({d["name"] for d in card["data"]["val"]})
    assert all(len(d["image"]) == 64 for d in card["data"]["train"])  # every image listed by its SHA-256
    history = card["validation"]["history"]
    assert [h["step"] for h in history] == [20, 40]
    assert history[-1]["train_loss"] < history[0]["train_loss"]  # the loss falls
    assert max(h["score"] for h in history) > np.mean([np.mean(c) for c in card["validation"]["original_decoder"].values()])
    assert all(p.grad is None and not p.requires_grad for p in tiny_vit.image_encoder.parameters())  # frozen
    for key, value in tiny_vit.image_encoder.state_dict().items():
        torch.testing.assert_close(value, encoder_before[key])
    for key, value in tiny_vit.mask_decoder.state_dict().items():  # training works on a copy
        torch.testing.assert_close(value, decoder_before[key])
    assert result.path.stat().st_size < 20 << 20
    with pytest.raises(FileExistsError, match="overwrite"):
        train_decoder(data, result.path, config, backbone=tiny_vit, progress=False, log=logs.append)


def test_decoder_file_is_hash_checked_and_tied_to_its_backbone(tiny_vit, tmp_path) -> None:
    folder = _synthetic_folder(tmp_path / "synthetic", n=4)
    config = DecoderTrainConfig(batch_size=2, max_steps=2, eval_every=2, warmup_steps=1, max_rounds=2, val_rounds=2)
    data = DecoderDataConfig(folders=(str(folder),), val_fraction=0.25)
    result = train_decoder(data, tmp_path / "dec.pt", config, backbone=tiny_vit,
                           store=EmbeddingStore(tmp_path / "store"), encoder="torch", progress=False, log=lambda m: None)
    applied = apply_decoder(tiny_vit, result.path)  # the card beside the file gives the hash
    assert applied.decoder_name == "dec" and "+dec@" in applied.signature
    with pytest.raises(ValueError, match="load it again"):
        apply_decoder(applied, "original")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(result.path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match="SHA-256|sha256|hash"):
        apply_decoder(tiny_vit, damaged, sha256=result.card["decoder_sha256"])
    other = type(tiny_vit)(tiny_vit.image_encoder, tiny_vit.prompt_encoder, tiny_vit.mask_decoder, tiny_vit.img_size,
                           (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), name="other")
    with pytest.raises(ValueError, match="trained for backbone"):
        apply_decoder(other, result.path)


def test_select_cases_caps_folders_and_splits_by_image(tmp_path) -> None:
    folder = _synthetic_folder(tmp_path / "a", n=8)
    train, val = select_cases(DecoderDataConfig(folders=(str(folder),), max_images={"a": 6}, val_fraction=0.25))
    assert len(train) + len(val) == 6 and len(val) == 2
    assert not {c.name for _, c in train} & {c.name for _, c in val}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        select_cases(DecoderDataConfig(folders=(str(tmp_path / "missing"),)))


def test_batched_predict_masks_equals_sams_decoder_image_by_image(tiny_vit) -> None:
    """The trainer's batched decoder (one image per prompt) against SAM's own decoder called on each image alone."""
    from monai_baldsam.decoder.sessions import predict_masks

    torch.manual_seed(1)
    pe, md = tiny_vit.prompt_encoder, tiny_vit.mask_decoder
    embeddings = torch.randn(3, *tiny_vit.image_encoder(torch.zeros(1, 3, 64, 64)).shape[1:])
    points = (torch.rand(3, 2, 2) * 64, torch.tensor([[1, 0], [1, -1], [0, 1]]))
    sparse, dense = pe(points=points, boxes=None, masks=None)
    masks, iou = predict_masks(md, embeddings, pe.get_dense_pe(), sparse, dense)
    for b in range(3):
        for multimask, picked in ((False, slice(0, 1)), (True, slice(1, None))):
            ref_masks, ref_iou = md(image_embeddings=embeddings[b:b + 1], image_pe=pe.get_dense_pe(),
                                    sparse_prompt_embeddings=sparse[b:b + 1], dense_prompt_embeddings=dense[b:b + 1],
                                    multimask_output=multimask)
            torch.testing.assert_close(masks[b:b + 1, picked], ref_masks, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(iou[b:b + 1, picked], ref_iou, atol=1e-5, rtol=1e-4)


def test_box_trained_decoder_answers_boxes_and_training_can_start_from_a_decoder(tiny_vit, tmp_path) -> None:
    """``train_boxes``: the box rounds are learnt (the box-first curve's first round beats the original decoder's)
    and the file says the decoder answers a box alone, which the backbone's routing then follows; ``init_decoder``
    starts a second training from that file and the card names it by hash."""
    folder = _synthetic_folder(tmp_path / "synthetic")
    config = DecoderTrainConfig(batch_size=4, lr=2e-3, warmup_steps=2, max_steps=30, eval_every=30, max_rounds=2,
                                val_rounds=2, time_budget_s=300, train_boxes=True, box_probability=1.0)
    data = DecoderDataConfig(folders=(str(folder),), val_fraction=0.25, seed=0)
    store = EmbeddingStore(tmp_path / "store")
    result = train_decoder(data, tmp_path / "boxes.pt", config, backbone=tiny_vit, store=store, encoder="torch",
                           progress=False, log=lambda m: None)
    card = result.card
    assert card["answers_boxes"] is True and card["init_decoder"]["name"] == "original"
    assert card["validation"]["history"][-1]["box"][0] > card["validation"]["original_decoder"]["box"][0]
    routed = apply_decoder(copy.deepcopy(tiny_vit), result.path)
    assert routed.click_decoder_for_boxes
    assert routed.decoder_modules(False) == (routed.click_prompt_encoder, routed.click_mask_decoder)
    assert tiny_vit.decoder_modules(False) == (tiny_vit.prompt_encoder, tiny_vit.mask_decoder)
    with pytest.raises(ValueError, match="init_decoder"):  # the backbone must run the decoder training starts from
        train_decoder(data, tmp_path / "again.pt", DecoderTrainConfig(max_steps=1, init_decoder="boxes"),
                      backbone=tiny_vit, store=store, encoder="torch", progress=False, log=lambda m: None)
    again = train_decoder(data, tmp_path / "again.pt", DecoderTrainConfig(
        batch_size=4, max_steps=2, eval_every=2, warmup_steps=1, max_rounds=2, val_rounds=2, init_decoder="boxes"),
        backbone=routed, store=store, encoder="torch", progress=False, log=lambda m: None)
    assert again.card["init_decoder"] == {"name": "boxes", "sha256": card["decoder_sha256"]}
    assert again.card["answers_boxes"] is False and "init_decoder" in again.card["validation"]
