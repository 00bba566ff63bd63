"""Long stories: the video lives in H.264 segments on disk, the story mp4 is those segments joined, and undo and
load rebuild the decoder and the K/V from a bounded tail of the story (counted in operations, never timed)."""

import os
import shutil
import subprocess
import zipfile

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


def test_a_saved_story_keeps_its_chunks_in_files_and_stories_of_earlier_formats_still_load(runtime, tmp_path):
    """story.pt holds the story's small state in one flat tensor per dtype; each chunk's latents and queries and each
    archived frame's latent and picture are files beside it (a long story's save and load do not write and read them
    all). Those files are the story's exact tensors; the same story written as format 2 (every tensor in story.pt) and
    format 1 (tensors in place) still loads, and all three continue the story alike."""
    from iamflow import story_files

    session = StorySession(runtime, video_dir=tmp_path / "video")
    tell(session, 6)  # (from the fourth chunk on, chunks leaving the window give the archive a frame)
    saved = session.save(tmp_path / "saved")
    packed = torch.load(saved / "story.pt", weights_only=True)
    assert packed["format"] == 3 and len(packed["tensor_data"]) == len(packed["tensor_dtypes"]) <= 3
    state = story_files._unpack_tensors(dict(packed))
    assert "latents" not in state and "chunk_queries" not in state
    chunks = len(session.latents)
    assert sorted(p.name for p in (saved / "chunks").iterdir()) == sorted(
        [f"latent-{g:04d}.bin" for g in range(chunks)] + [f"queries-{g:04d}.bin" for g in range(chunks)])
    for g in range(chunks):
        latent, queries = session.latents[g], session.chunk_queries[g]
        assert (saved / "chunks" / f"latent-{g:04d}.bin").read_bytes() == latent.contiguous().numpy().tobytes()
        assert (saved / "chunks" / f"queries-{g:04d}.bin").read_bytes() == queries.contiguous().numpy().tobytes()
    records = state["bank"]["records"]
    assert records and all(r["aside"] and r["latent"] is None and r["thumbnail"] is None for r in records)
    for r in records:  # (the earlier formats carry the archive's tensors inside story.pt)
        aside = torch.load(saved / "memory" / f"{r['key']}.pt", weights_only=True)
        assert torch.equal(aside["latent"], session.bank.latent(r["key"]))
        assert np.array_equal(aside["thumbnail"].numpy(), session.bank.thumbnail(r["key"]))
        r.update(latent=aside["latent"], thumbnail=aside["thumbnail"], aside=False)
    del state["chunk_files"]
    state["latents"], state["chunk_queries"] = list(session.latents), list(session.chunk_queries)

    from ui import bundles  # a story bundle carries those files, and only a story's files

    key = bundles.load_or_create_key(tmp_path / "bundle.key")
    bundle = bundles.pack(saved, tmp_path / "story.zip", key)
    with zipfile.ZipFile(bundle) as archive:
        names = {i.filename: i for i in archive.infolist()}
    assert {f"chunks/{name}" for name in chunk_files(session)} | {f"memory/{r['key']}.pt" for r in records} <= set(names)
    assert all(i.compress_type == zipfile.ZIP_STORED for n, i in names.items() if n.endswith((".bin", ".pt")))
    folders = {"format 3": saved, "bundle": bundles.unpack(bundle, tmp_path / "unpacked", key)}
    for version in (2, 1):
        folder = folders[f"format {version}"] = tmp_path / f"saved-format-{version}"
        shutil.copytree(saved, folder)
        shutil.rmtree(folder / "chunks"), shutil.rmtree(folder / "memory")
        state["format"] = version
        torch.save(story_files._pack_tensors(dict(state)) if version == 2 else state, folder / "story.pt")
    frames = {}
    for name, folder in folders.items():
        loaded = StorySession.load(folder, runtime, video_dir=tmp_path / f"loaded-{name}")
        assert all(torch.equal(a, b) for a, b in zip(loaded.latents, session.latents, strict=True))
        tell(loaded, 1, seed=100)
        frames[name] = loaded.story_frames()
    tell(session, 1, seed=100)
    for name in folders:
        np.testing.assert_array_equal(frames[name], session.story_frames())


def chunk_files(session) -> list[str]:
    return sorted(p.name for p in (session.video_dir / "chunks").iterdir())


def test_a_save_never_replaces_the_story_s_own_working_files(runtime, tmp_path):
    """Saving into the session's own folder, into a folder inside it, or into a folder whose video/ is the session's
    folder would delete the story's chunks and segments (or lose the save with the session): each is refused with a
    message that says what to change, and the story goes on whole."""
    session = StorySession(runtime, video_dir=tmp_path / "work" / "video")
    tell(session, 2)
    files = sorted(p.relative_to(session.video_dir) for p in session.video_dir.rglob("*") if p.is_file())
    for folder in (session.video_dir, session.video_dir / "saved", tmp_path / "work"):
        with pytest.raises(ValueError, match="choose"):
            session.save(folder)
    assert sorted(p.relative_to(session.video_dir) for p in session.video_dir.rglob("*") if p.is_file()) == files
    assert not (session.video_dir / "saved").exists() and not (tmp_path / "work" / "story.pt").exists()
    saved = session.save(tmp_path / "elsewhere")  # the story is whole: it saves, loads and continues
    tell(session, 1, seed=2)
    loaded = StorySession.load(saved, runtime, video_dir=tmp_path / "loaded")
    assert len(loaded.scenes) == 2 and len(session.scenes) == 3


def test_load_and_undo_replay_a_bounded_tail_of_the_story(runtime, tmp_path):
    """... and the host memory a story holds does not grow with it: four times the story keeps as many chunks in RAM,
    and no archived frame's latent or picture (they wait in files; undo takes the undone chunks' files away)."""
    counts, held = {}, {}
    for scenes in (3, 12):
        session = StorySession(runtime, video_dir=tmp_path / f"video-{scenes}")
        tell(session, scenes)
        in_ram = [r for r in session.bank.archive.values() if r.latent is not None or r.thumbnail is not None]
        held[scenes] = session.latents.held_bytes(), session.chunk_queries.held_bytes(), len(in_ram)
        saved = session.save(tmp_path / f"saved-{scenes}")
        assert len(chunk_files(session)) == 2 * len(session.latents)  # (each written as it reaches the host)
        loaded = StorySession.load(saved, runtime, video_dir=tmp_path / f"loaded-{scenes}")
        assert loaded.decoded_latent_frames == 0  # loading decodes nothing: the segments come with the story
        assert len(loaded.video) == len(session.latents) and loaded.num_video_frames == session.num_video_frames
        tell(loaded, 1, seed=100)
        tell(session, 1, seed=100)
        after_load = (loaded.replayed_ops, loaded.decoded_latent_frames)
        session.undo_last_scene()
        assert len(chunk_files(session)) == 2 * len(session.latents)
        decoded_before = session.decoded_latent_frames
        tell(session, 1, seed=100)
        counts[scenes] = after_load, (session.replayed_ops, session.decoded_latent_frames - decoded_before)
        # continuing a loaded story is continuing the story: same frames
        assert np.array_equal(loaded.story_frames(), session.story_frames())
    cache = runtime.config.cache
    in_ram = cache.local_window_frames // cache.frames_per_chunk + 2  # the window and a margin
    latent_bytes, query_bytes = (t.numel() * t.element_size() for t in (session.latents[0], session.chunk_queries[0]))
    assert held[3][:2] == (3 * latent_bytes, 3 * query_bytes)
    kept = in_ram + 1  # (+1: the story's last chunk, whose copy is still on its way to the host when it ends)
    assert held[12] == (kept * latent_bytes, kept * query_bytes, 0) and len(session.bank.archive) > 3
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


def test_a_long_wan_story_can_travel_as_a_bundle_that_fits_the_disk(tmp_path):
    """A bundle is bounded by what its own story can hold (a 30-minute Wan story's files: several GiB, more than
    the old 2 GiB ceiling) and by the server's free disk, checked before anything is written."""
    import shutil as _shutil

    from iamflow.config import WAN_PRESET
    from ui import bundles

    thirty_minutes = bundles.story_size_bound(load_config(preset=WAN_PRESET), [6.0] * 300)
    assert 2 * 1024**3 < thirty_minutes <= bundles.MAX_UNPACKED_BYTES
    bundles.check_room(tmp_path, 1)
    free = _shutil.disk_usage(tmp_path).free
    with pytest.raises(bundles.BundleError, match=r"GiB free .*free some space on the server, or load a shorter"):
        bundles.check_room(tmp_path, free)
    assert not any(tmp_path.iterdir())


def test_a_segment_that_cannot_be_written_says_why_and_keeps_no_frames(tmp_path, monkeypatch):
    """Without ffmpeg a segment fails with a VideoError that names the cause; the failed segment (kept with the
    story) holds none of the chunk's frames, so a story told on a machine without ffmpeg does not keep every frame."""
    import gc
    import weakref

    from iamflow.story_files import StoryVideo
    from iamflow.video import VideoError

    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg-here"))
    video = StoryVideo(tmp_path / "video", 1, 16)
    frames = np.zeros((4, 32, 48, 3), np.uint8)
    alive = weakref.ref(frames)
    failed = video.add(frames)
    assert isinstance(failed.exception(timeout=30), VideoError) and "no-ffmpeg-here" in str(failed.exception())
    del frames
    gc.collect()
    assert alive() is None, "the failed segment keeps the chunk's frames"
    with pytest.raises(VideoError, match="could not be written"):
        video.segments()
    video.close()
