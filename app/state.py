"""Prepared views: a page's settings live in the URL (st.query_params) and in the session, so a link opens
the page in that state, leaving a page and coming back keeps it, and Reset or a preset sets them at once.

A page calls `view(name, presets)` first; every widget it wants kept is created through `kept(...)`, which
fills the widget from the URL (a link just opened), from the page's saved settings (coming back), or
from the widget's own default, and writes the value back to both."""

from __future__ import annotations

import json
from typing import Any, Callable

import streamlit as st

_SAVED = "_views"  # session_state[_SAVED][page][key]: the page's settings, kept across page switches
_PAGE = "_view_page"
PRESET_PARAM = "preset"


def _saved(page: str | None = None) -> dict:
    views = st.session_state.setdefault(_SAVED, {})
    return views.setdefault(page or st.session_state.get(_PAGE, ""), {})


def encode(value: Any) -> str:
    """A widget value as it reads in a URL: strings plain, everything else as JSON ('4', '0.5', '[3,7]')."""
    if isinstance(value, str):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))


def decode(text: str) -> Any:
    """The inverse of encode: JSON where it parses (numbers, lists, null, booleans), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def reset(page: str, presets_applied: dict[str, Any] | None = None) -> None:
    """Every kept setting of `page` back to its default (callback of the Reset button), then `presets_applied`."""
    saved = _saved(page)
    for key in list(saved):
        st.session_state.pop(key, None)
        if key in st.query_params:
            del st.query_params[key]
    saved.clear()
    if presets_applied:
        for key, value in presets_applied.items():
            st.session_state[key] = value


def view(page: str, presets: dict[str, dict[str, Any]] | None = None) -> None:
    """Start a page's prepared view: remember which page runs; a `?preset=NAME` link applies that preset
    once. Call it before the page's widgets."""
    st.session_state[_PAGE] = page
    name = st.query_params.get(PRESET_PARAM)
    if name is not None:
        del st.query_params[PRESET_PARAM]
        if presets and name in presets:
            reset(page, presets[name])


def controls(page: str, presets: dict[str, dict[str, Any]] | None = None, descriptions: dict[str, str] | None = None) -> None:
    """Reset and one button per preset (each says in its tooltip what it shows)."""
    with st.container(horizontal=True, wrap=True):
        st.button("Reset", key=f"{page}.reset", on_click=reset, args=(page,), icon=":material/restart_alt:",
                  help="Every setting on this page back to its default.")
        for name, values in (presets or {}).items():
            st.button(name, key=f"{page}.preset.{name}", on_click=reset, args=(page, values),
                      help=(descriptions or {}).get(name))


def _fit(value: Any, kwargs: dict) -> tuple[bool, Any]:
    """(whether value can be the widget's value, the value in the widget's type and range): a number is
    clamped to [min_value, max_value] (a cap that shrank, a hand-edited link), an option must be one."""
    options = kwargs.get("options")
    if options is not None:
        options = list(options)
        if isinstance(value, list):
            most = kwargs.get("max_selections")
            return all(v in options for v in value) and (most is None or len(value) <= most), value
        return value in options, value
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is None and hi is None:
        return True, value
    kind = type(lo if lo is not None else hi)

    def number(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError
        v = kind(v)
        v = v if hi is None else min(v, hi)
        return v if lo is None else max(v, lo)

    try:
        return True, (tuple(number(v) for v in value) if isinstance(value, (list, tuple)) else number(value))
    except (TypeError, ValueError):
        return False, value


def kept(widget: Callable, *args, key: str, **kwargs):
    """widget(*args, key=key, **kwargs), its value restored from the URL or the page's saved settings and
    written back to both. A value that no longer fits the widget (a stale link) falls back to the default."""
    saved = _saved()
    if key not in st.session_state:
        if key in st.query_params:
            st.session_state[key] = decode(st.query_params[key])
        elif key in saved:
            st.session_state[key] = saved[key]
    if key in st.session_state:
        ok, value = _fit(st.session_state[key], kwargs)
        if not ok:  # a value from a stale or hand-edited link that the widget cannot show: its default
            del st.session_state[key]
        elif value != st.session_state[key]:
            st.session_state[key] = value
    value = widget(*args, key=key, **kwargs)
    saved[key] = value
    text = encode(value)
    if st.query_params.get(key) != text:
        st.query_params[key] = text
    return value
