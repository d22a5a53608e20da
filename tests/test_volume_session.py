"""VolumeSession mechanics on a synthetic volume with a tiny random ViT (fast): propagation bookkeeping,
corrections that re-propagate outward only, encoding each slice once, axis choice and bad input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.transforms.intensity import WindowIntensity
from monai_baldsam.transforms.prompts import UserPrompts, ijk_to_slice_xy
from monai_baldsam.volume import PropagationConfig, StopReason, StopRule, VolumeSession

# The random ViT's masks are arbitrary, so the rule accepts every non-empty mask: these tests are about bookkeeping.
LENIENT = PropagationConfig(stop=StopRule(min_area_mm2=0.0, min_iou=0.0, min_appearance_margin=-math.inf,
                                          min_area_ratio=0.0))


def _volume(affine: torch.Tensor | None = None, shape: tuple[int, int, int] = (40, 32, 12)) -> MetaTensor:
    data = torch.zeros(1, *shape)
    data[0, 10:30, 8:24, 2:10] = 1.0
    data += 0.05 * torch.rand(data.shape, generator=torch.Generator().manual_seed(0))
    return MetaTensor(data, affine=affine if affine is not None else torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0])))


def _session(tiny_vit, image: MetaTensor | None = None, **kwargs) -> VolumeSession:
    kwargs.setdefault("config", LENIENT)
    return VolumeSession(image if image is not None else _volume(), SamPredictor(tiny_vit, EmbeddingCache()),
                         window=WindowIntensity("minmax"), **kwargs)


def _count_encoded(model) -> list[int]:
    counts: list[int] = []
    model.image_encoder.register_forward_hook(lambda module, args, out: counts.append(int(args[0].shape[0])))
    return counts


def test_box_propagates_both_ways_to_the_volume_ends(tiny_vit) -> None:
    session = _session(tiny_vit)
    runs = session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    assert [(r.anchor, r.direction, r.slices, r.reason) for r in runs] == [
        (5, 1, (6, 7, 8, 9, 10, 11), StopReason.VOLUME_END), (5, -1, (4, 3, 2, 1, 0), StopReason.VOLUME_END)]
    assert sorted(session.results) == list(range(12)) and session.anchors == [5]
    assert all(r.anchor == 5 for r in session.results.values())
    np.testing.assert_array_equal(session.results[5].prompt.box_xyxy, [10, 8, 29, 23])
    label = session.label()
    assert label.shape == (1, 40, 32, 12) and label.dtype == torch.uint8
    assert torch.equal(label.affine, session.image.affine)
    for k, result in session.results.items():
        assert np.array_equal(label[0, :, :, k].numpy().astype(bool), result.mask_ab)


def test_correction_repropagates_outward_and_leaves_the_other_side_untouched(tiny_vit) -> None:
    session = _session(tiny_vit)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    before = session.results
    runs = session.update(UserPrompts(box=[12, 10, 8, 25, 20]))
    after = session.results
    assert session.anchors == [5, 8]
    for k in range(8):  # the seed's side: the very same results
        assert after[k] is before[k]
    np.testing.assert_array_equal(after[8].prompt.box_xyxy, [12, 10, 25, 20])
    assert all(after[k].anchor == 8 and after[k] is not before[k] for k in (8, 9, 10, 11))
    up, down = runs
    assert up.slices == (9, 10, 11) and up.reason is StopReason.VOLUME_END
    assert down.slices == () and down.stop_index == 7 and down.reason is StopReason.OTHER_CHAIN


def test_correction_that_stops_earlier_clears_the_stale_slices_beyond(tiny_vit) -> None:
    session = _session(tiny_vit)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    before = session.results
    session.config = dataclasses.replace(LENIENT, max_slices=1)
    up, down = session.update(UserPrompts(box=[12, 10, 8, 25, 20]))
    assert up.slices == (9,) and up.stop_index == 10 and up.reason is StopReason.MAX_SLICES and up.cleared == (10, 11)
    assert sorted(session.results) == list(range(10))
    assert all(session.results[k] is before[k] for k in range(8)) and down.cleared == ()


@pytest.mark.parametrize("keep", [False, True])
def test_a_rejected_repropagation_clears_or_keeps_the_earlier_results_beyond(tiny_vit, keep: bool) -> None:
    session = _session(tiny_vit)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    before = session.results
    rejecting = dataclasses.replace(LENIENT.stop, min_area_mm2=1e9)  # every propagated mask is "tiny"
    session.config = dataclasses.replace(LENIENT, stop=rejecting, keep_past_rejection=keep)
    up, down = session.update(UserPrompts(box=[12, 10, 8, 25, 20]))
    assert up.slices == () and up.stop_index == 9 and up.reason is StopReason.TINY and up.rejected is not None
    assert (up.kept, up.cleared) == (((9, 10, 11), ()) if keep else ((), (9, 10, 11)))
    assert sorted(session.results) == (list(range(12)) if keep else list(range(9)))
    assert all(session.results[k] is before[k] for k in [*range(8), *(range(9, 12) if keep else ())])
    assert down.reason is StopReason.OTHER_CHAIN and down.kept == () and down.cleared == ()


def test_keeping_past_a_rejection_has_nothing_to_keep_on_a_first_box(tiny_vit) -> None:
    rejecting = dataclasses.replace(LENIENT.stop, min_area_mm2=1e9)
    session = _session(tiny_vit, config=dataclasses.replace(LENIENT, stop=rejecting, keep_past_rejection=True))
    runs = session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    assert [(r.stop_index, r.reason, r.kept) for r in runs] == [(6, StopReason.TINY, ()), (4, StopReason.TINY, ())]
    assert sorted(session.results) == [5]


def test_correction_on_the_seed_slice_repropagates_both_ways(tiny_vit) -> None:
    session = _session(tiny_vit)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    before = session.results
    session.update(UserPrompts(foreground=[[20, 16, 5]]))  # clicks keep the slice's box
    prompt = session.user_prompt(5)
    np.testing.assert_array_equal(prompt.box_xyxy, [10, 8, 29, 23])
    np.testing.assert_array_equal(prompt.points_xy, [[20, 16]])
    assert all(session.results[k] is not before[k] for k in range(12))


def test_two_prompted_slices_share_the_volume(tiny_vit) -> None:
    session = _session(tiny_vit)
    runs = session.update(UserPrompts(box=[10, 8, 2, 29, 23], foreground=[[20, 16, 9]]))
    summary = [(r.anchor, r.direction, r.slices, r.reason) for r in runs]
    assert summary == [(2, 1, (3, 4, 5, 6, 7, 8), StopReason.USER_SLICE), (2, -1, (1, 0), StopReason.VOLUME_END),
                       (9, 1, (10, 11), StopReason.VOLUME_END), (9, -1, (), StopReason.OTHER_CHAIN)]
    assert [session.results[k].anchor for k in range(12)] == [2] * 9 + [9] * 3


def test_no_propagation_segments_only_the_prompted_slices(tiny_vit) -> None:
    session = _session(tiny_vit)
    assert session.update(UserPrompts(box=[10, 8, 5, 29, 23]), propagate=False) == []
    assert sorted(session.results) == [5]
    assert session.label()[0].sum(dim=(0, 1)).nonzero().flatten().tolist() == [5]


def test_each_slice_is_encoded_at_most_once(tiny_vit) -> None:
    counts = _count_encoded(tiny_vit)
    session = _session(tiny_vit)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    session.update(UserPrompts(box=[12, 10, 8, 25, 20]))
    session.update(UserPrompts(box=[11, 9, 3, 27, 22]))
    assert sum(counts) == 12 and session.requested == set(range(12))
    assert session.predictor.cache.misses == 12


def test_encode_all_batches_and_makes_propagation_decode_only(tiny_vit) -> None:
    counts = _count_encoded(tiny_vit)
    session = _session(tiny_vit, batch_size=5)
    session.encode_all()
    assert counts == [5, 5, 2]
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    assert counts == [5, 5, 2]


def test_default_axis_is_the_through_plane_axis_and_boxes_use_it(tiny_vit) -> None:
    sagittal = torch.diag(torch.tensor([4.0, 0.8, 0.8, 1.0]))  # thick along i
    session = _session(tiny_vit, image=_volume(sagittal, shape=(6, 32, 40)))
    assert session.axis == 0 and session.num_slices == 6
    np.testing.assert_allclose(session.spacing_xy, [0.8, 0.8])
    session.update(UserPrompts(box=[8, 10, 3, 24, 30]))  # (j0, k0, i, j1, k1) on slice i = 3
    assert sorted(session.results) == list(range(6))
    assert session.results[3].mask_ab.shape == (32, 40)
    assert _session(tiny_vit, image=_volume(sagittal, shape=(6, 32, 40)), axis=2).axis == 2


def test_bad_input_is_refused_and_changes_nothing(tiny_vit) -> None:
    predictor = SamPredictor(tiny_vit, EmbeddingCache())
    with pytest.raises(ValueError, match="3D volume"):
        VolumeSession(MetaTensor(torch.rand(1, 32, 32)), predictor)
    with pytest.raises(ValueError, match="channel"):
        VolumeSession(MetaTensor(torch.rand(2, 8, 8, 4)), predictor)
    session = _session(tiny_vit)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    before = session.results
    with pytest.raises(ValueError, match="outside"):
        session.update(UserPrompts(box=[10, 8, 6, 29, 23], foreground=[[5, 5, 40]]))
    with pytest.raises(ValueError, match="outside"):
        session.update(UserPrompts(foreground=[[45, 5, 3]]))
    with pytest.raises(ValueError, match="no prompt"):
        session.update(UserPrompts())
    with pytest.raises(ValueError, match="has no prompt"):
        session.propagate(7, 1)
    assert session.results == before and session.anchors == [5]


def test_segmenter_propagates_on_request_only(tiny_vit) -> None:
    segmenter = Segmenter(tiny_vit, window=WindowIntensity("minmax"), axis=2)
    image, prompts = _volume(), UserPrompts(box=[10, 8, 5, 29, 23])
    single = segmenter(image, prompts)
    assert single[0].sum(dim=(0, 1)).nonzero().flatten().tolist() == [5]
    propagated = segmenter(image, prompts, propagate=True, config=LENIENT)
    assert propagated[0].sum(dim=(0, 1)).nonzero().flatten().tolist() == list(range(12))
    assert torch.equal(propagated[0, :, :, 5], single[0, :, :, 5])
    with pytest.raises(ValueError, match="3D volume"):
        segmenter(MetaTensor(torch.rand(1, 32, 32)), UserPrompts(box=[2, 2, 20, 20]), propagate=True)
    with pytest.raises(ValueError, match="return_logits"):
        segmenter(image, prompts, propagate=True, return_logits=True)


@pytest.mark.gpu
def test_encode_all_on_cuda_matches_cpu(tiny_vit) -> None:
    image = _volume()
    cpu = _session(tiny_vit, image=image)
    cpu.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    gpu = VolumeSession(image, SamPredictor(tiny_vit.to("cuda"), EmbeddingCache()), window=WindowIntensity("minmax"),
                        config=LENIENT, batch_size=4)
    assert gpu.prefetch == 4
    gpu.encode_all()
    assert gpu.predictor.cache.misses == 12
    gpu.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    assert gpu.predictor.cache.misses == 12 and sorted(gpu.results) == sorted(cpu.results)
    agree = np.mean([np.mean(gpu.results[k].mask_ab == cpu.results[k].mask_ab) for k in cpu.results])
    assert agree > 0.99


def _click_model(tiny_vit, tiny_head, predictor: SamPredictor):
    from monai_baldsam.head.click_model import BayesianHeadClickModel

    head, laplace = tiny_head
    return BayesianHeadClickModel(predictor, head, laplace)


def test_click_model_decodes_prompted_slices_and_scores_the_neighbourhood(tiny_vit, tiny_head) -> None:
    predictor = SamPredictor(tiny_vit, EmbeddingCache())
    config = dataclasses.replace(LENIENT, max_slices=2)
    session = VolumeSession(_volume(), predictor, window=WindowIntensity("minmax"), config=config,
                            click_model=_click_model(tiny_vit, tiny_head, predictor))
    session.update(UserPrompts(box=[10, 8, 5, 29, 23], foreground=[[20, 16, 5]]))
    if not session.results[5].mask_ab.any():
        pytest.fail("the tiny head gave an empty mask on the prompted slice: the test needs a non-empty one")
    assert math.isnan(session.results[5].iou)  # decoded by the head, which predicts no IoU
    assert all(not math.isnan(r.iou) for i, r in session.results.items() if i != 5)  # propagation keeps SAM
    filled = sorted(i for i, r in session.results.items() if r.mask_ab.any())
    scored = session.scored_slices()
    assert set(filled) <= set(scored) and set(scored) - set(filled) <= {min(filled) - 1, max(filled) + 1}
    uncertainty = session.uncertainty()
    mi = uncertainty.maps["mutual_information"]
    assert mi.shape == (40, 32, 12) and uncertainty.slices == tuple(scored) and (mi >= 0).all()
    off = [k for k in range(12) if k not in scored]
    assert off and not mi[:, :, off].any() and mi[:, :, list(scored)].any()
    assert ((uncertainty.probability >= 0) & (uncertainty.probability <= 1)).all()
    np.testing.assert_array_equal(session.clicked_ijk(), [[20, 16, 5]])


def test_session_without_click_model_refuses_uncertainty_and_another_backbone(tiny_vit, tiny_head) -> None:
    session = _session(tiny_vit)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]), propagate=False)
    with pytest.raises(ValueError, match="click model"):
        session.uncertainty()
    from monai_baldsam.sam.backbones import build_sam_vit

    torch.manual_seed(1)
    another = build_sam_vit(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=64,
                            window_size=2, name="another_vit").eval()
    with pytest.raises(ValueError, match="one backbone"):
        VolumeSession(_volume(), SamPredictor(another), click_model=_click_model(tiny_vit, tiny_head,
                                                                                   SamPredictor(tiny_vit)))


def test_segmenter_with_a_head_file_decodes_with_the_head(tiny_vit, tiny_head, tmp_path) -> None:
    from monai_baldsam.head.checkpoint import save_head

    head, laplace = tiny_head
    path = save_head(tmp_path / "tiny_head.pt", head, laplace, tiny_vit)
    segmenter = Segmenter(tiny_vit, window=WindowIntensity("minmax"), axis=2, head=str(path))
    image, prompts = _volume(), UserPrompts(foreground=[[20, 16, 5]], box=[10, 8, 5, 29, 23])
    outputs = segmenter.head_outputs(image, prompts)
    assert list(outputs) == [5] and "mutual_information" in outputs[5].extras
    label = segmenter(image, prompts)
    assert label.shape == (1, 40, 32, 12) and not label[0, :, :, [k for k in range(12) if k != 5]].any()
    np.testing.assert_array_equal(label[0, :, :, 5].numpy().astype(bool), outputs[5].mask.T)
    logits = segmenter(image, prompts, return_logits=True)
    assert torch.equal(logits[0, :, :, 5] > 0, label[0, :, :, 5].bool())
    with pytest.raises(ValueError, match="no prediction head"):
        Segmenter(tiny_vit).head_outputs(image, prompts)


def test_background_click_alone_on_a_slice_empties_it_without_decoding(tiny_vit) -> None:
    config = dataclasses.replace(LENIENT, max_slices=2)
    session = _session(tiny_vit, config=config)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    before = {i: r.mask_ab.copy() for i, r in session.results.items()}
    counts = _count_encoded(tiny_vit)
    runs = session.update(UserPrompts(background=[[20, 16, 10]]))  # past the end of the result, nothing else there
    assert counts == []  # an answer of "not here" needs no model
    assert not session.results[10].mask_ab.any() and session.anchors == [5, 10]
    assert all(r.slices == () for r in runs if r.anchor == 10)
    for index, mask in before.items():
        assert np.array_equal(session.results[index].mask_ab, mask)


def test_foreground_click_past_the_end_takes_the_box_propagation_would_have_given(tiny_vit) -> None:
    from monai_baldsam.volume.propagation import propagation_prompt

    session = _session(tiny_vit, config=dataclasses.replace(LENIENT, max_slices=2))
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    last = session.results[7]
    if not last.mask_ab.any():
        pytest.fail("the tiny ViT gave an empty mask on slice 7: the test needs the run to reach it")
    expected = propagation_prompt(last.mask_ab, last.low_res_logits, session.spacing_xy, session.config).box_xyxy
    session.update(UserPrompts(background=[[12, 10, 8]]), propagate=False)
    assert session.user_prompt(8).box_xyxy is None  # "not here" alone: no box, the slice stays empty
    session.update(UserPrompts(foreground=[[20, 16, 8]]), propagate=False)  # "the object goes on here"
    prompt = session.user_prompt(8)
    np.testing.assert_array_equal(prompt.box_xyxy, expected)
    np.testing.assert_array_equal(prompt.labels, [0, 1])
    session.update(UserPrompts(foreground=[[20, 16, 0]]), propagate=False)  # far from any result: no box to take
    assert session.user_prompt(0).box_xyxy is None


def test_a_slice_past_the_end_answered_background_is_scored_with_the_question_and_the_answer(tiny_vit,
                                                                                            tiny_head) -> None:
    """BALD asked about the slice past an end with the neighbour's box; after a "background" answer there the slice
    stays empty, and its maps come from that box plus the answer, not from the background click alone."""
    predictor = SamPredictor(tiny_vit, EmbeddingCache())
    model = _click_model(tiny_vit, tiny_head, predictor)
    asked: list[tuple] = []
    predict = model.predict
    model.predict = lambda emb, points, labels, box, mask=None: (asked.append((points, labels, box)),
                                                                predict(emb, points, labels, box, mask))[1]
    session = VolumeSession(_volume(), predictor, window=WindowIntensity("minmax"),
                            config=dataclasses.replace(LENIENT, max_slices=2), click_model=model)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    if not session.results[7].mask_ab.any():
        pytest.fail("the tiny ViT gave an empty mask on slice 7: the test needs the run to reach it")
    session.uncertainty()
    box_past_end = [a[2] for a in asked if a[0] is None and a[2] is not None]
    asked.clear()
    session.update(UserPrompts(background=[[20, 16, 8]]))  # the answer on the slice past the upper end
    assert not session.results[8].mask_ab.any() and 8 in session.scored_slices()
    session.uncertainty()
    assert session.last_recomputed == (8,)
    (points, labels, box), = asked
    np.testing.assert_array_equal(points, ijk_to_slice_xy(np.array([[20, 16, 8]]), 2)[1])
    np.testing.assert_array_equal(labels, [0])
    assert box is not None and any(np.array_equal(box, b) for b in box_past_end)


def test_uncertainty_is_cached_per_slice_and_recomputed_only_where_the_prompt_changed(tiny_vit, tiny_head) -> None:
    predictor = SamPredictor(tiny_vit, EmbeddingCache())
    model = _click_model(tiny_vit, tiny_head, predictor)
    decoded: list[int] = []
    predict = model.predict
    model.predict = lambda *args, **kwargs: (decoded.append(1), predict(*args, **kwargs))[1]  # count decodes
    session = VolumeSession(_volume(), predictor, window=WindowIntensity("minmax"),
                            config=dataclasses.replace(LENIENT, max_slices=2), click_model=model)
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]))
    assert decoded == [1]  # the prompted slice, by the head; propagation keeps SAM's decoder
    decoded.clear()
    first = session.uncertainty()  # the prompted slice's maps come from the decode that segmented it
    assert 5 in first.slices and 5 not in session.last_recomputed
    assert set(session.last_recomputed) == set(first.slices) - {5} and len(decoded) == len(first.slices) - 1 > 0
    decoded.clear()
    again = session.uncertainty()  # nothing changed: every slice from the cache, no decoding
    assert session.last_recomputed == () and decoded == [] and again.slices == first.slices
    for name, volume in first.maps.items():
        np.testing.assert_array_equal(again.maps[name], volume)
    np.testing.assert_array_equal(again.probability, first.probability)
    # a click on slice 5 without propagation changes slice 5's prompt only: decoded once, by the update
    decoded.clear()
    session.update(UserPrompts(foreground=[[22, 18, 5]]), propagate=False)
    assert decoded == [1]
    decoded.clear()
    changed = session.uncertainty()
    assert session.last_recomputed == () and decoded == []
    # what the cache returned equals decoding every slice anew
    session.uncertainty_cache.clear()
    fresh = session.uncertainty()
    assert set(session.last_recomputed) == set(fresh.slices) == set(changed.slices)
    for name, volume in fresh.maps.items():
        np.testing.assert_array_equal(changed.maps[name], volume)
    np.testing.assert_array_equal(changed.probability, fresh.probability)
    session.reset()
    assert len(session.uncertainty_cache) == 0


def test_uncertainty_cache_is_bounded_and_keys_on_the_prompt() -> None:
    from monai_baldsam.transforms.prompts import SlicePrompt
    from monai_baldsam.volume.uncertainty_cache import SliceScores, SliceUncertaintyCache, prompt_signature

    box = SlicePrompt(box_xyxy=np.array([1.0, 2.0, 10.0, 12.0]))
    moved = SlicePrompt(box_xyxy=np.array([1.0, 2.0, 10.0, 13.0]))
    clicked = SlicePrompt(box_xyxy=np.array([1.0, 2.0, 10.0, 12.0]), points_xy=np.array([[4.0, 5.0]]),
                          labels=np.array([1]))
    keys = {prompt_signature(3, p) for p in (box, moved, clicked)} | {prompt_signature(4, box)}
    assert len(keys) == 4 and prompt_signature(3, box) == prompt_signature(3, SlicePrompt(box_xyxy=box.box_xyxy.copy()))
    scores = SliceScores(np.zeros((8, 8), np.float32), {"mutual_information": np.zeros((8, 8), np.float32)})
    cache = SliceUncertaintyCache(max_items=2, max_bytes=3 * scores.nbytes)
    for index in range(3):
        cache.put(index, "a", scores)
    assert len(cache) == 2 and 0 not in cache and cache.nbytes == 2 * scores.nbytes  # least recently used went
    assert cache.get(1, "b") is None and 1 not in cache  # another prompt: the stale entry is dropped
    assert cache.get(2, "a") is scores and (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ValueError, match="positive"):
        SliceUncertaintyCache(max_items=0)


def test_a_boxed_slice_is_scored_even_when_its_mask_is_empty(tiny_vit, tiny_head) -> None:
    """A structure of a few pixels can come out empty on the box's slice: BALD still scores that slice (the box says
    the object is there) instead of refusing with "nothing is segmented" (the hippocampus dev volumes hit this)."""
    from types import SimpleNamespace

    from monai_baldsam.volume.scoring import scored_slices

    empty = {5: SimpleNamespace(mask_ab=np.zeros((4, 4), dtype=bool))}
    assert scored_slices(empty, 12) == [] and scored_slices(empty, 12, boxed=[5]) == [5]
    full = {5: SimpleNamespace(mask_ab=np.ones((4, 4), dtype=bool))}
    assert scored_slices(full, 12, boxed=[5]) == [4, 5, 6] and scored_slices(full, 6, boxed=[9]) == [4, 5]
    predictor = SamPredictor(tiny_vit, EmbeddingCache())
    session = VolumeSession(_volume(), predictor, window=WindowIntensity("minmax"), config=LENIENT,
                            click_model=_click_model(tiny_vit, tiny_head, predictor))
    session.update(UserPrompts(box=[10, 8, 5, 29, 23]), propagate=False)
    session._results[5] = dataclasses.replace(session.results[5], mask_ab=np.zeros_like(session.results[5].mask_ab))
    assert session.scored_slices() == [5]
    assert session.uncertainty().slices == (5,)
