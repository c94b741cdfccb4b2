"""luffy_testing: the machinery of the tests and benchmarks, not a part users run.

- :mod:`luffy_testing.tiny_model`: the tiny checkpoints the project builds offline (two tokenizer shapes),
  cached by the builder's source;
- :mod:`luffy_testing.servers`: luffy-serve processes for tests and benchmarks, started from the checkout.

It imports luffy_util and luffy_math only (never luffy_serve), so the trainer's environment imports it too.
"""
