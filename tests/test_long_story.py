"""Long stories: the video lives in H.264 segments on disk, the story mp4 is those segments joined, and undo and
load rebuild the decoder and the K/V from a bounded tail of the story (counted in operations, never timed)."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from iamflow.config import load_config
from iamflow.session import Runtime, StorySession
from iamflow.video import display_scale, read_video, upscale

PROMPTS = [
    "A man in a red shirt walks along the beach.",
    "The man waves at a woman in a yellow dress.",
    "Later, the man runs through a snowy field.",
]


@pytest.fixture(scope="module")
def runtime():
    return Runtime.load(load_config(preset="storyworld"))


def tell(session, scenes, chunks=1, seed=0):
    for i in range(scenes):
        for _ in session.add_scene(PROMPTS[i % len(PROMPTS)], chunks=chunks, seed=seed + i):
            pass


def probe(path, entries):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", entries,
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()


def test_the_story_video_is_its_segments_joined(runtime, tmp_path):
    session = StorySession(runtime, video_dir=tmp_path / "video")
    tell(session, 2, chunks=2)
    assert not hasattr(session, "chunk_frames")  # no frame of the story is kept in RAM beyond the window
    segments = session.video.segments()
    assert [p.name for p in segments] == [f"chunk-{g:04d}.ts" for g in range(4)]
    out = session.export(tmp_path / "story.mp4")["mp4"]
    frames = session.story_frames()  # exact: decoded again from the latents
    assert probe(out, "stream=codec_name")[0].startswith("h264")
    assert int(probe(out, "stream=nb_read_frames")[0]) == len(frames) == session.num_video_frames
    duration = float(probe(out, "format=duration")[-1])
    assert abs(duration - len(frames) / session.fps) < 1.5 / session.fps
    shown = read_video(out)
    scale = display_scale(*frames.shape[1:3])
    for i in (0, len(frames) // 2, len(frames) - 1):  # the scenes in order, within H.264's loss
        error = np.abs(shown[i].astype(int) - upscale(frames[i], scale).astype(int)).mean()
        assert error < 6, (i, error)
    # undo drops the scene's segments with it; the next scene writes its own
    session.undo_last_scene()
    assert len(session.video.segments()) == 2 and not (tmp_path / "video" / "chunk-0002.ts").exists()


def test_the_joined_story_grows_by_the_new_segments_and_forgets_undone_ones(tmp_path):
    """A turn joins the story joined at the last turn with the segments since; the result is every segment, in
    order, bit for bit (no re-encoding), also after an undo dropped segments the joined story held (undoing the last turn goes back to the join
    before it)."""
    from iamflow.story_files import StoryVideo

    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (12, 32, 48, 3), dtype=np.uint8) for _ in range(5)]
    story = StoryVideo(tmp_path / "video", scale=1, fps=16)

    def expected(chunks):
        return np.concatenate([read_video(p) for p in story.segments()[:chunks]])

    for clip in clips[:3]:
        story.add(clip)
    np.testing.assert_array_equal(read_video(story.join(tmp_path / "turn-1.mp4")), expected(3))
    for clip in clips[3:]:
        story.add(clip)
    np.testing.assert_array_equal(read_video(story.join(tmp_path / "turn-2.mp4")), expected(5))
    assert story._joined_chunks == 5
    kept = os.stat(story._previous).st_ino  # the join of turn 1 (3 chunks), kept beside turn 2's
    story.truncate(3)  # undo of turn 2's scene: back to turn 1's join, not a join of the whole story again
    assert story._joined_chunks == 3 and os.stat(story._joined).st_ino == kept
    np.testing.assert_array_equal(read_video(story.join(tmp_path / "turn-2b.mp4")), expected(3))
    story.truncate(2)  # an undo further back than the kept join: the story is joined again from its segments
    assert story._joined_chunks == 0
    np.testing.assert_array_equal(read_video(story.join(tmp_path / "turn-3.mp4")), expected(2))
    story.add(clips[4])
    np.testing.assert_array_equal(read_video(story.join(tmp_path / "turn-4.ts")), expected(3))
    story.close()


def test_a_saved_story_carries_its_join_and_a_loaded_one_shows_it_without_joining_again(runtime, tmp_path):
    """Loading a long story does not join its segments again: the join saved with it is the loaded story's, and the
    next turn appends to it. A story saved without a join (never shown) loads as before and joins when asked."""
    from iamflow.story_files import JOINED_NAME, VIDEO_DIR

    session = StorySession(runtime, video_dir=tmp_path / "video")
    tell(session, 2)
    unjoined = session.save(tmp_path / "saved-unjoined")
    assert not (unjoined / VIDEO_DIR / JOINED_NAME).exists()
    shown = read_video(session.video.join(tmp_path / "shown.mp4"))  # what the app does after every turn
    saved = session.save(tmp_path / "saved")
    assert (saved / VIDEO_DIR / JOINED_NAME).is_file()

    loaded = StorySession.load(saved, runtime, video_dir=tmp_path / "loaded")
    kept = loaded.video.complete_join()
    assert kept is not None and kept.read_bytes() == (saved / VIDEO_DIR / JOINED_NAME).read_bytes()
    np.testing.assert_array_equal(read_video(loaded.video.join(tmp_path / "loaded.mp4")), shown)
    assert os.stat(loaded.video.complete_join()).st_ino == os.stat(kept).st_ino  # shown as it came, not joined again
    tell(loaded, 1, seed=100)
    tell(session, 1, seed=100)
    np.testing.assert_array_equal(read_video(loaded.video.join(tmp_path / "loaded-next.mp4")),
                                  read_video(session.video.join(tmp_path / "next.mp4")))

    plain = StorySession.load(unjoined, runtime, video_dir=tmp_path / "plain")
    assert plain.video.complete_join() is None
    np.testing.assert_array_equal(read_video(plain.video.join(tmp_path / "plain.mp4")), shown)


def test_a_saved_story_keeps_its_tensors_flat_and_a_story_of_the_first_format_still_loads(runtime, tmp_path):
    """story.pt holds one flat tensor per dtype (a long story's load was mostly the safe unpickler reading
    thousands of small tensors); what it gives back is the story's state exactly. A format-1 story still loads."""
    from iamflow import story_files

    session = StorySession(runtime, video_dir=tmp_path / "video")
    tell(session, 3)
    saved = session.save(tmp_path / "saved")
    packed = torch.load(saved / "story.pt", weights_only=True)
    assert packed["format"] == 2 and len(packed["tensor_data"]) == len(packed["tensor_dtypes"]) <= 3
    assert packed["tensor_table"].shape[0] >= 2 * len(session.latents)  # the latents and queries (and the bank's)
    state = story_files._unpack_tensors(dict(packed))
    assert all(torch.equal(a, b) for a, b in zip(state["latents"], session.latents))
    assert all(torch.equal(a, b) for a, b in zip(state["chunk_queries"], session.chunk_queries))

    state["format"] = 1  # the same story as the first format wrote it: tensors in place
    first = tmp_path / "saved-format-1"
    shutil.copytree(saved, first)
    torch.save(state, first / "story.pt")
    frames = {}
    for name, folder in (("format 2", saved), ("format 1", first)):
        loaded = StorySession.load(folder, runtime, video_dir=tmp_path / f"loaded-{name}")
        tell(loaded, 1, seed=100)
        frames[name] = loaded.story_frames()
    tell(session, 1, seed=100)
    np.testing.assert_array_equal(frames["format 2"], session.story_frames())
    np.testing.assert_array_equal(frames["format 1"], session.story_frames())


def test_load_and_undo_replay_a_bounded_tail_of_the_story(runtime, tmp_path):
    counts = {}
    for scenes in (3, 12):
        session = StorySession(runtime, video_dir=tmp_path / f"video-{scenes}")
        tell(session, scenes)
        saved = session.save(tmp_path / f"saved-{scenes}")
        loaded = StorySession.load(saved, runtime, video_dir=tmp_path / f"loaded-{scenes}")
        assert loaded.decoded_latent_frames == 0  # loading decodes nothing: the segments come with the story
        assert len(loaded.video) == len(session.latents) and loaded.num_video_frames == session.num_video_frames
        tell(loaded, 1, seed=100)
        tell(session, 1, seed=100)
        after_load = (loaded.replayed_ops, loaded.decoded_latent_frames)
        session.undo_last_scene()
        decoded_before = session.decoded_latent_frames
        tell(session, 1, seed=100)
        counts[scenes] = after_load, (session.replayed_ops, session.decoded_latent_frames - decoded_before)
        # continuing a loaded story is continuing the story: same frames
        assert np.array_equal(loaded.story_frames(), session.story_frames())
    for (ops_long, decoded_long), (ops_short, decoded_short) in zip(counts[12], counts[3]):
        assert decoded_long == decoded_short  # four times the story, the same decoding to pick it up again
        assert ops_long <= ops_short + 1  # (+1: the memory write, which the short story has not made yet)
    fpc = runtime.config.cache.frames_per_chunk
    (ops, decoded), _ = counts[12]
    assert ops < 12 and decoded <= 3 * fpc + 1


def test_the_wan_decoder_resumes_from_its_reach(tmp_path):
    """The Wan VAE decoder's causal state is a function of its last ``reach_latent_frames`` latent frames: decoding
    only those with a fresh decoder continues bit for bit, one frame fewer does not (a real AutoencoderKLWan of
    Wan's layout at a tiny width)."""
    from diffusers import AutoencoderKLWan

    from iamflow.engine.codec import WanVAECodec

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                           temperal_downsample=[False, True, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()
    codec = WanVAECodec(vae, fps=16)
    reach = codec.stream_decoder().reach_latent_frames
    latents = [torch.randn(1, 4, 3, 2, 3) for _ in range(14)]
    whole = codec.stream_decoder()
    expected = [whole.decode(z) for z in latents]

    def resumed(frames_back: int) -> bool:
        decoder, first = codec.stream_decoder(), 12
        decoder.decode(torch.cat(latents, dim=2)[:, :, first * 3 - frames_back - 1 : first * 3])
        return all(torch.equal(decoder.decode(latents[g]), expected[g]) for g in range(first, 14))

    assert resumed(reach) and not resumed(reach - 2)
    big = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                           temperal_downsample=[False, True, True])
    assert WanVAECodec(big, fps=16).stream_decoder().reach_latent_frames == 38  # Wan2.1's layout: 13 chunks
