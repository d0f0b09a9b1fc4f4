"""Widgets for readers without a kernel: the state an executed notebook saved, turned into
the outputs a reader of the HTML or PDF sees.

When nbclient (papermill) runs a notebook, it stores every widget's state in the notebook's
metadata (``application/vnd.jupyter.widget-state+json``), including what ``Output``
widgets captured (the tables and figures ``interactive_output`` drew for the starting
values). A cell's output then holds only a reference to a widget view, which nbconvert
drops from static HTML. :func:`static_widgets` replaces each such reference with a line
naming the controls and their values, followed by the captured outputs, so the export shows
the notebook's initial state.
"""

from __future__ import annotations

import copy
import html

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def widget_state(nb) -> dict:
    """Model id → the saved state of each widget of an executed notebook (empty if none)."""
    return dict(nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {}))


def _ref(value) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


def _walk(model_id: str, models: dict, seen: set) -> tuple[list, list]:
    """Controls (description, value shown) and captured outputs under a widget, in view order."""
    if model_id in seen or model_id not in models:
        return [], []
    seen.add(model_id)
    model = models[model_id]
    state = model.get("state", {})
    name = model.get("model_name", "")
    controls, outputs = [], []
    if name == "OutputModel":
        outputs.extend(state.get("outputs", []))
    elif "children" in state:
        for child in state["children"]:
            ref = _ref(child)
            if ref:
                more_controls, more_outputs = _walk(ref, models, seen)
                controls += more_controls
                outputs += more_outputs
    elif state.get("description") is not None:
        labels = state.get("_options_labels")
        if labels and state.get("index") is not None:
            index = state["index"]
            shown = ", ".join(labels[i] for i in index) if isinstance(index, list) else labels[index]
        else:
            shown = state.get("value")
        if shown is not None:
            controls.append((state["description"], str(shown)))
    return controls, outputs


def static_widgets(nb):
    """A copy of ``nb`` whose widget views are replaced by their saved initial state:
    a line with the controls' values, then what their ``Output`` widgets captured."""
    models = widget_state(nb)
    if not models:
        return nb
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(VIEW)
            if not view:
                outputs.append(output)
                continue
            controls, captured = _walk(view.get("model_id", ""), models, set())
            if controls:
                text = ", ".join(f"{html.escape(d)} = <b>{html.escape(v)}</b>" for d, v in controls)
                outputs.append({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": f'<p class="widget-state">Shown for the starting controls: '
                                         f"{text}. Open the notebook in JupyterLab to move them.</p>",
                                         "text/plain": "controls"}})
            outputs += [dict(o) for o in captured]
        cell.outputs = outputs
    return nb
