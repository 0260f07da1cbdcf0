"""hubui on a Hugging Face Space: the same app, with "Sign in with Hugging Face"."""

from hubui import interrupt_on_sigterm
from hubui.ui import build_app, launch_options

demo = build_app(oauth=True)

if __name__ == "__main__":
    # A Space restart sends SIGTERM: stop like Ctrl+C, so the sessions' scratch folders are removed.
    with interrupt_on_sigterm():
        demo.launch(**launch_options())  # the app's CSS; no run history (see launch_options)
