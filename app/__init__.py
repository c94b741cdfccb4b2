"""The Gradio demo: chat with a LUFFY model served by an OpenAI-compatible endpoint (see docs/app.md)."""
