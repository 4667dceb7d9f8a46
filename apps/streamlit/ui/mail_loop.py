"""Starts the outbox delivery loop (backoffice.mail.loop) once per Streamlit server process."""

from __future__ import annotations

import threading

import streamlit as st

from backoffice.config import get_settings
from backoffice.mail.loop import run_forever
from ui import readers


def _stop(stop: threading.Event | None) -> None:
    if stop is not None:
        stop.set()


# cache_resource computes this once per process, under a lock, whatever the number of sessions;
# clearing the cache stops the loop (on_release) and the next run starts a fresh one.
@st.cache_resource(show_spinner=False, on_release=_stop)
def start() -> threading.Event | None:
    """The running loop's stop event, or None when no SMTP host is configured (mails wait)."""
    settings = get_settings()
    if not settings.smtp_host:
        return None
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(readers.engine(), settings, stop), name="outbox-delivery", daemon=True
    )
    thread.start()
    return stop
