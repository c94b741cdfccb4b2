"""benchmarks: the LUFFY evaluation harness (six math benchmarks, three OOD sets; avg@k, pass@k, maj@k).

    python -m benchmarks run --model M --benchmarks aime24,math500 --out DIR
    python -m benchmarks score DIR
    python -m benchmarks report DIR
"""
