"""A browser session driven in-process, the way Gradio runs a page's events: each event goes
through the built demo's registered function (`blocks.fns`) with Gradio's own `process_api`
(its preprocessing, the gr.Request and SelectData it injects, the session's gr.State, the
postprocessing), its validator first as the queue runs it, then the events chained after it
(`.success` only when it succeeded, `.then` always). What each component holds afterwards is
what the browser would hold."""

from __future__ import annotations

import asyncio
from typing import Any

import gradio as gr
from gradio.block_function import BlockFunction
from gradio.events import EventData
from gradio.queueing import create_validator_fn
from gradio.state_holder import SessionState


class Refused(Exception):
    """The validator refused the event before it was queued: its message names the field."""


class Session:
    def __init__(self, demo: gr.Blocks, name: str = "session") -> None:
        self.demo = demo
        self.state = SessionState(demo)
        self.request = gr.Request(session_hash=name)
        self.values: dict[int, Any] = {}
        self.visible: dict[int, bool] = {}

    def value(self, component: gr.components.Component) -> Any:
        """What the browser holds in the component (a State: what the session holds)."""
        if component.stateful:
            return self.state[component._id]
        return self.values.get(component._id, getattr(component, "value", None))

    def set(self, component: gr.components.Component, value: Any) -> None:
        """The user types or picks a value."""
        if component.stateful:
            self.state[component._id] = value
        else:
            self.values[component._id] = value

    def shown(self, component: gr.components.Component) -> bool:
        return self.visible.get(component._id, component.visible is not False)

    def trigger(
        self, component: gr.blocks.Block, event: str = "click", data: dict | None = None
    ) -> None:
        """The user fires `event` on `component`; every event listening runs, with what it
        chains. An exception any of them raises is raised here."""
        listening = [
            fn
            for fn in self.demo.fns.values()
            if (component._id, event) in fn.targets and fn.trigger_after is None
        ]
        assert listening, f"nothing listens to {event} on {component}"
        # Unqueued events answer at once; queued ones wait their turn in the queue.
        for fn in sorted(listening, key=lambda fn: fn.queue is not False):
            self._run(fn, EventData(component, data) if data is not None else None)

    def open(self) -> None:
        """The browser loads the page: its load events run."""
        self._page_event("load")

    def close(self) -> None:
        """The user closes the tab: the page's unload events run."""
        self._page_event("unload")

    def _page_event(self, event: str) -> None:
        # Gradio targets "load" at the page (its id) and "unload" at nothing (None).
        page = {(self.demo._id, event), (None, event)}
        for fn in self.demo.fns.values():
            if page & set(fn.targets):
                self._run(fn, None)

    def select(self, component: gr.components.Component, index: Any, value: Any = None) -> None:
        self.trigger(component, "select", {"index": index, "value": value, "selected": True})

    def _run(self, fn: BlockFunction, event_data: EventData | None) -> None:
        inputs = [self.value(block) for block in fn.inputs]
        if fn.validator is not None:
            verdicts = self._call(create_validator_fn(fn), inputs, event_data)
            refused = [v["message"] for v in verdicts if isinstance(v, dict) and not v["is_valid"]]
            if refused:
                raise Refused(refused[0])
        if fn.fn is not None:
            outputs = self._call(fn, inputs, event_data)
            for block, output in zip(fn.outputs, outputs, strict=False):
                self._keep(block, output)
        for after in self.demo.fns.values():
            if after.trigger_after == fn._id:
                self._run(after, event_data)

    def _call(self, fn: BlockFunction, inputs: list[Any], event_data: EventData | None) -> list:
        """The event's outputs; a generator's updates are kept as they stream, and its last
        are returned."""
        return asyncio.run(self._stream(fn, inputs, event_data))

    async def _stream(
        self, fn: BlockFunction, inputs: list[Any], event_data: EventData | None
    ) -> list:
        iterator = None
        while True:
            result = await self.demo.process_api(
                block_fn=fn,
                inputs=inputs,
                state=self.state,
                request=self.request,
                iterator=iterator,
                session_hash=self.request.session_hash,
                event_data=event_data,
            )
            if not result["is_generating"]:
                # A generator's end says "finished", not new values: its last ones stand.
                return result["data"] if iterator is None else []
            for block, output in zip(fn.outputs, result["data"], strict=False):
                self._keep(block, output)
            iterator = result["iterator"]

    def _keep(self, block: gr.blocks.Block, output: Any) -> None:
        if block.stateful:
            return  # process_api keeps it in the session's state
        if isinstance(output, dict) and output.get("__type__") == "update":
            if "visible" in output:
                self.visible[block._id] = output["visible"]
            if "value" not in output:
                return
            output = output["value"]
        self.values[block._id] = output
