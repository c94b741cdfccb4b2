"""``python -m app``: serve the demo page against an OpenAI-compatible endpoint (a local luffy-serve by default)."""

from __future__ import annotations

import argparse
import os
import sys

from luffy_util import arg_types


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Every value is checked here (argparse exits 2 with one error line), before gradio is imported."""
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--base-url", type=arg_types.base_url,
                        default=os.environ.get("LUFFY_BASE_URL", "http://127.0.0.1:8000"),
                        help="the endpoint's URL, with or without /v1 (env LUFFY_BASE_URL; default %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("LUFFY_API_KEY") or os.environ.get("OPENAI_API_KEY"),
                        help="Bearer key for the endpoint (env LUFFY_API_KEY or OPENAI_API_KEY)")
    parser.add_argument("--model", default=None, help="served model name (default: the endpoint's first model)")
    parser.add_argument("--max-tokens", type=arg_types.positive_int, default=8192,
                        help="initial Max tokens setting (default %(default)s, as LUFFY's evaluation)")
    parser.add_argument("--host", type=arg_types.host, default="127.0.0.1",
                        help="address the page listens on (default %(default)s)")
    parser.add_argument("--port", type=arg_types.port, default=7860,
                        help="port the page listens on, 1-65535 (default %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from app.demo import build_demo  # imports gradio; after argument errors, which need none

    demo = build_demo(args.base_url, api_key=args.api_key, model=args.model, max_tokens=args.max_tokens)
    try:
        demo.queue().launch(server_name=args.host, server_port=args.port, share=False, ssr_mode=False,
                            footer_links=["api", "gradio"], quiet=True)
    except OSError as exc:  # the port is taken
        sys.exit(f"python -m app: cannot listen on {args.host}:{args.port}: {exc}")


if __name__ == "__main__":
    main()
