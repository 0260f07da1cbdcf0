"""The Gradio face of hubui. Importing it does not launch anything."""

from hubui.ui.app import build_app, launch_options

__all__ = ["build_app", "launch_options"]
