"""hubui on a Hugging Face Space: the same app, with "Sign in with Hugging Face"."""

from hubui.ui import build_app

demo = build_app(oauth=True)

if __name__ == "__main__":
    demo.launch()
