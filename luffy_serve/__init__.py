"""luffy_serve: a math-aware OpenAI-compatible server for LUFFY checkpoints on vLLM's engine."""
