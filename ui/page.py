"""The components the event handlers update, named: ``ui.layout`` builds them, ``ui.callbacks`` fills them.

A handler returns ``{page.progress: "…", page.timeline: rows}``; Gradio updates those components and leaves every
other output of the event as it is. The output lists here fix the order in which the API (gradio_client) returns
an event's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass(frozen=True, eq=False)
class Page:
    server_status: gr.Markdown
    # the scene being generated
    live: gr.HTML  # the live view (frames as they are generated)
    progress: gr.Textbox
    scene_entities: gr.Textbox
    start: gr.State  # bumped to queue a scene on the device
    # the story as it stands
    story: gr.Video
    timeline: gr.Dataframe
    entities: gr.HTML
    memory: gr.Gallery
    archive: gr.Dataframe
    mapping: gr.Code
    download_mp4: gr.DownloadButton
    download_mapping: gr.DownloadButton
    download_bundle: gr.DownloadButton
    summary: gr.Markdown

    def story_outputs(self) -> list:
        """Outputs of the events that refresh the whole story (undo, new story, load)."""
        return [self.story, self.timeline, self.entities, self.memory, self.archive, self.mapping,
                self.download_mp4, self.download_mapping, self.download_bundle, self.summary]

    def scene_outputs(self) -> list:
        """Outputs of Add scene: the live player, the progress line and the scene's characters, then the story."""
        return [self.live, self.progress, self.scene_entities, *self.story_outputs()]
