"""The page: every component and every event of the app, wired in one place.

Element ids are stable (tests and people who script the page rely on them): ``scene-prompt``, ``add-scene``,
``live-video``, ``story-video``, ``entity-registry``, ``memory-frames``, ``stop``, ``undo``, ``new-story``,
``download-mp4``, ``download-mapping``; and ``scene-seconds``, ``scene-seed``, ``progress``, ``timeline``,
``memory-archive``, ``mapping-json``, ``prepare-bundle``, ``download-bundle``, ``load-story``, ``story-summary``, ``server-status``.

Generation runs in the ``device`` concurrency group, one at a time per device worker (one scene at a time on a
server with one device, N at once with ``--devices`` listing N), and shows the queue position to whoever waits;
everything else (stop, undo, downloads, loading, panels) has its own group and never waits behind it.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from iamflow.agent import BACKENDS
from iamflow.config import EMBEDDED_PRESET, WAN_PRESET, MemoryConfig
from iamflow.session import MAX_SCENE_SECONDS

from . import formatting
from .callbacks import StoryController
from .live_feed import live_route
from .page import Page

CSS_PATH = Path(__file__).with_name("style.css")
MAX_UPLOAD_BYTES = 1024**3  # a story bundle of hours of storyworld video, minutes of Wan video

INTRO = (
    "Tell a story one scene at a time. Each prompt continues the video from where it stopped; "
    "the **Entities** panel shows who the story knows, the **Memory** panel which frames the model keeps "
    "in mind to draw them again."
)

# "Try" prompts a preset's model can draw. The embedded world has six places (park, beach, city street at night,
# snowy field, desert, room), six kinds of character in eight colours, and a few actions (docs/storyworld.md):
# no umbrellas, benches or rain.
EXAMPLES = {
    EMBEDDED_PRESET: [
        "A man in a red shirt walks along the beach.",
        "The man waves at a woman in a yellow dress.",
        "Later, he runs through a snowy field with an orange dog.",
    ],
    WAN_PRESET: [
        "A young man in a red jacket walks along a beach at sunset.",
        "The man stops and waves at a woman with a yellow umbrella.",
        "He sits down on a bench in the park while it starts to rain.",
    ],
}


def examples_for(preset: str) -> list[str]:
    return EXAMPLES.get(preset, EXAMPLES[EMBEDDED_PRESET])


def build_blocks(app: StoryController) -> gr.Blocks:
    limit = app.memory_limit()
    defaults = app.default_settings()
    examples = examples_for(app.options.default_preset)
    with gr.Blocks(title="IAM Flow — live storytelling", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# IAM Flow\n" + INTRO, elem_id="intro")
        server_status = gr.Markdown(elem_id="server-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                with gr.Group():
                    prompt = gr.Textbox(label="Scene prompt", placeholder=examples[0], lines=2, max_lines=6,
                                        elem_id="scene-prompt", autofocus=True)
                    with gr.Row():
                        seconds = gr.Slider(1, MAX_SCENE_SECONDS, value=3, step=0.5, label="Length (seconds)",
                                            elem_id="scene-seconds", scale=3)
                        live_mode = gr.Checkbox(value=False, label="Live (until the next prompt)", elem_id="scene-live",
                                                scale=1, min_width=120,
                                                info=f"ends by itself at {app.live_cap_seconds():g} s")
                        seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0, minimum=-1,
                                         elem_id="scene-seed", scale=1, min_width=120)
                with gr.Row():
                    add = gr.Button("Add scene", variant="primary", elem_id="add-scene", scale=2)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1)
                    undo = gr.Button("Undo last scene", elem_id="undo", scale=1)
                    new = gr.Button("New story", elem_id="new-story", scale=1)
                gr.Examples(examples, inputs=[prompt], label="Try")
                progress = gr.Textbox(label="Progress", interactive=False, elem_id="progress", max_lines=1)
                scene_entities = gr.Textbox(label="This scene", interactive=False, elem_id="scene-entities",
                                            max_lines=3)
                with gr.Row():
                    # the frames as they are decoded (a Motion-JPEG stream, ``ui.live_feed``), not segments
                    live = gr.HTML(formatting.LIVE_PLACEHOLDER, label="Live: the scene as it is generated",
                                   elem_id="live-video", show_label=True, container=True)
                    story = gr.Video(label="The story so far", interactive=False, autoplay=False, loop=False,
                                     elem_id="story-video", height=300, buttons=["download"])
                summary = gr.Markdown(formatting.story_summary([], 16), label="Story", elem_id="story-summary")
                timeline = gr.Dataframe(headers=formatting.TIMELINE_HEADERS, value=[], interactive=False,
                                        label="Timeline", elem_id="timeline", wrap=True,
                                        column_widths=["9%", "43%", "11%", "10%", "15%", "12%"])
                with gr.Row():
                    download_mp4 = gr.DownloadButton("Download story mp4", interactive=False, elem_id="download-mp4")
                    download_mapping = gr.DownloadButton("Download mapping.json", interactive=False,
                                                         elem_id="download-mapping")
                    prepare_bundle = gr.Button("Prepare story bundle", elem_id="prepare-bundle")
                    download_bundle = gr.DownloadButton("Download story bundle", interactive=False,
                                                        elem_id="download-bundle")
                    load = gr.UploadButton("Load story", file_types=[".zip"], file_count="single",
                                           elem_id="load-story")
                with gr.Accordion("Advanced settings (apply to a new story)", open=False, elem_id="advanced"):
                    memory_policy = gr.Dropdown(list(MemoryConfig.POLICIES), value=defaults.memory_policy,
                                                label="Memory policy", info="none · sink (LongLive) · nam (MemFlow) · iam (entity-aware) · nam-prompt",
                                                elem_id="memory-policy")
                    transition = gr.Dropdown(list(MemoryConfig.TRANSITIONS), value=defaults.transition,
                                             label="Scene transition", elem_id="transition",
                                             info="recache (LongLive) · soft · none · cut (a new shot; a prompt opening \"Cut to …\" is one)")
                    max_memory = gr.Slider(0, limit, value=defaults.max_memory_frames, step=1,
                                           label="Max memory frames", elem_id="max-memory-frames")
                    enrich = gr.Checkbox(value=defaults.enrich_prompts, label="Enrich prompts with known attributes",
                                         elem_id="enrich-prompts")
                    preset = gr.Dropdown(list(app.options.presets), value=app.options.default_preset,
                                         label="Model preset", elem_id="model-preset")
                    backend = gr.Dropdown(list(BACKENDS), value=defaults.agent_backend, label="Agent backend",
                                          elem_id="agent-backend")
            with gr.Column(scale=2, min_width=340):
                gr.Markdown("### Entities")
                entities = gr.HTML(formatting.registry_html({}), label="Entities", elem_id="entity-registry")
                gr.Markdown("### Memory")
                memory = gr.Gallery(label="Active memory frames", columns=3, height=300, object_fit="contain",
                                    elem_id="memory-frames", show_label=True, format="png", interactive=False,
                                    preview=False)
                with gr.Accordion("Memory archive", open=False):
                    archive = gr.Dataframe(headers=formatting.ARCHIVE_HEADERS, value=[], interactive=False,
                                           label="Memory archive", elem_id="memory-archive", wrap=True)
                with gr.Accordion("mapping.json", open=False):
                    mapping = gr.Code(formatting.mapping_text({"global_registry": {}}), language="json",
                                      label="mapping.json", interactive=False, elem_id="mapping-json",
                                      max_lines=30)

        start = gr.State(0)
        page = Page(server_status=server_status, live=live, progress=progress, scene_entities=scene_entities,
                    start=start, story=story, timeline=timeline, entities=entities, memory=memory, archive=archive,
                    mapping=mapping, download_mp4=download_mp4, download_mapping=download_mapping,
                    download_bundle=download_bundle, summary=summary)
        app.page = page
        settings = [memory_policy, transition, max_memory, enrich, preset, backend]
        story_outputs = page.story_outputs()

        # Add scene / Enter: while this tab's scene runs, the prompt switches the story at the next chunk (a light
        # event, answered at once); otherwise it bumps `start`, whose change queues the scene on the device.
        # "always_last": a start asked for while the last run is still ending is not dropped, it runs next.
        submit_args = dict(fn=app.submit_scene, inputs=[prompt, seconds, seed, live_mode, start],
                           outputs=[progress, start], concurrency_limit=None, concurrency_id="light", api_name=False,
                           show_progress="hidden")
        add.click(**submit_args)
        prompt.submit(**submit_args)
        start.change(
            fn=app.add_scene, inputs=[prompt, seconds, seed, *settings, live_mode], outputs=page.scene_outputs(),
            validator=app.validate_scene, concurrency_limit=len(app.workers), concurrency_id="device",
            api_name="add_scene",
            show_progress="minimal", show_progress_on=[progress], trigger_mode="always_last",
        )
        gr.api(app.switch_scene, api_name="switch_scene", concurrency_limit=None, concurrency_id="light")
        # typing the next prompt: once it pauses, the device prepares the switch to it (nothing is shown)
        prompt.input(app.prepare_scene, inputs=[prompt, seed], outputs=None, concurrency_limit=None, concurrency_id="light",
                     trigger_mode="always_last", show_progress="hidden", api_name="prepare_scene")
        stop.click(app.stop, outputs=[progress], concurrency_limit=None, concurrency_id="light", api_name="stop",
                   show_progress="hidden")
        # the live player, the progress line and the scene's entities show the last generation: cleared once
        # the story changes (after Undo they would show a scene the story no longer has)
        clear_scene = dict(fn=lambda: {live: formatting.LIVE_PLACEHOLDER, progress: "", scene_entities: ""},
                           outputs=[live, progress, scene_entities], api_name=False)
        undo.click(app.undo, outputs=story_outputs, concurrency_limit=4, concurrency_id="story",
                   api_name="undo").success(**clear_scene)
        new.click(app.new_story, inputs=settings, outputs=story_outputs, concurrency_limit=4, concurrency_id="story",
                  api_name="new_story").success(**clear_scene)
        load.upload(app.load_story, inputs=[load], outputs=story_outputs, concurrency_limit=4, concurrency_id="story",
                    api_name="load_story").success(**clear_scene)
        prepare_bundle.click(app.story_bundle, outputs=[download_bundle], concurrency_limit=4, concurrency_id="story",
                             api_name="story_bundle")
        demo.load(app.page_loaded, outputs=[server_status], api_name=False, concurrency_limit=None,
                  concurrency_id="light")
        demo.unload(app.release)
    return demo


def launch_kwargs(app: StoryController) -> dict:
    """Arguments of ``Blocks.launch`` that every way of starting the app shares; the server gets the live view's
    route (``ui.live_feed``) beside Gradio's own."""
    return dict(
        app_kwargs={"routes": [live_route(app.live_feed)]},
        css_paths=[CSS_PATH],
        run_history=False,  # replaying saved outputs in the browser would show a story the server no longer holds
        footer_links=["api", "settings"],
        share=False,
        show_error=True,
        max_file_size=MAX_UPLOAD_BYTES,  # refused while it is uploaded, before it is stored
    )
