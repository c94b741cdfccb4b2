"""``python -m luffy_serve``: the ``luffy-serve`` command.

It runs ``luffy_serve.cli`` as the main module (as the ``luffy-serve`` script has it), so that the processes
the server spawns (vLLM's engine core, its workers) import it first, and with it the log filter (quiet_log).
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("luffy_serve.cli", run_name="__main__", alter_sys=True)
