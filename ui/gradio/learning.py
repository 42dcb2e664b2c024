"""The Learning tab: validation metrics per round, the rounds and agents tables, the Train button.

Everything shown comes from :meth:`Service.report` and :meth:`Service.agents`, read again on page
load and after each training run, so the tab always describes the model that is serving.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from recagents.ui import formatting as fmt
from recagents.ui.service import Service

#: How often the Train button's progress bar polls the running training.
POLL_S = 0.2


@dataclass
class LearningTab:
    """The tab's components and the handlers that fill them."""

    service: Service
    summary: gr.Markdown
    plot: gr.Plot
    rounds: gr.Dataframe
    agents: gr.Dataframe
    train: gr.Button
    status: gr.Markdown
    dialogues: gr.CheckboxGroup
    feedback: gr.Checkbox

    @property
    def outputs(self) -> list[Any]:
        """What :meth:`learning_outputs` fills, in its order."""
        return [self.summary, self.plot, self.rounds, self.agents, self.dialogues]

    def learning_outputs(self) -> tuple[Any, ...]:
        """Summary, metrics figure, rounds table and agents table of the serving model."""
        report = self.service.report()
        agents = self.service.agents()
        summary = fmt.learning_markdown(report, agents.get("training"))
        rh, rows = fmt.rounds_table(report)
        ah, arows = fmt.agents_table(agents["agents"])
        names, serving = self.service.dialogue_options()
        return (
            summary,
            fmt.rounds_figure(report),
            gr.Dataframe(value=rows, headers=rh),
            gr.Dataframe(value=arows, headers=ah),
            gr.CheckboxGroup(choices=names, value=serving, visible=bool(names)),
        )

    def on_train(
        self,
        dialogues: list[str] | None = None,
        feedback: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> str:
        """Start a training run and follow it on the progress bar until the new model serves.

        ``dialogues``: the ticked dialogue corpora of the home, learned with the catalog;
        ``feedback``: the option "with live conversations" (a feedback round).
        """
        service = self.service
        try:
            # a home without dialogue corpora trains as before (the trainer's default)
            offered = service.dialogue_options()[0]
            started = service.start_training(
                list(dialogues or []) if offered else None, with_feedback=bool(feedback)
            )
        except Exception as exc:
            return fmt.error_message(exc)
        if not started:
            return "A training run is already in progress."
        progress(0.0, desc="starting")
        while service.training.state == "running":
            progress(service.training.progress, desc=service.training.message or "training")
            time.sleep(POLL_S)
        status = service.training
        if status.state == "failed":
            message = f"Training failed: {status.error}. The previous model keeps serving."
        else:
            took = (status.finished or 0) - (status.started or 0)
            message = f"Training finished in {took:.1f} s: the new model is serving."
        return message

    def wire_page_load(self, demo: gr.Blocks) -> None:
        """Fill the tab when a page opens."""
        demo.load(self.learning_outputs, None, self.outputs, api_visibility="private")

    def wire(self) -> None:
        """Train on click, one run at a time, then refresh the tab."""
        self.train.click(
            self.on_train,
            [self.dialogues, self.feedback],
            self.status,
            api_visibility="private",
            concurrency_limit=1,
        ).then(  # the progress bar sits on the status line only; then refresh the rest
            self.learning_outputs, None, self.outputs, api_visibility="private"
        )


def build_learning_tab(service: Service) -> LearningTab:
    """Lay out the tab's contents (inside the caller's ``gr.Tab``); Train only with a trainer."""
    summary = gr.Markdown(elem_id="learning-summary")
    plot = gr.Plot(label="Validation metrics per round", elem_id="rounds-plot")
    rounds = gr.Dataframe(label="Rounds", interactive=False)
    agents = gr.Dataframe(label="Agents", interactive=False, elem_id="agents-table")
    names, serving = service.dialogue_options()
    dialogues = gr.CheckboxGroup(
        choices=names,
        value=serving,
        label="Also learn from these conversations (ingested dialogue corpora)",
        info="Each dialogue joins the rounds as a user: films named together, the seeker's "
        "words, the suggestions taken. Ingest one with `recagents ingest --dialogues FILE`.",
        visible=bool(names),
        interactive=service.trainer is not None,
        elem_id="train-dialogues",
    )
    with gr.Row():
        train = gr.Button(
            "Train",
            variant="primary",
            interactive=service.trainer is not None,
            elem_id="train",
            scale=0,
        )
        status = gr.Markdown(
            "Training reruns the collaborative rounds and swaps in the new model."
            if service.trainer is not None
            else "Training from the UI is not available on this server.",
            elem_id="train-status",
        )
    feedback = gr.Checkbox(
        label="With live conversations: fold the interaction log's threads in as users, "
        "starting from the model serving now (a feedback round)",
        value=False,
        interactive=service.trainer is not None,
        elem_id="train-feedback",
    )
    return LearningTab(service, summary, plot, rounds, agents, train, status, dialogues, feedback)
