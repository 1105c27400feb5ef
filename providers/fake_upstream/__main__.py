"""Command line: `python -m providers.fake_upstream --port 9100 [--host 127.0.0.1] [--timeout-keep-alive 5]`."""

import argparse
import importlib.util
import logging

import uvicorn

from providers.fake_upstream.app import app

DROPPED_ON_PURPOSE = "ASGI callable returned without completing response."


class _HideInjectedDisconnects(logging.Filter):
    """Injected disconnects are the point, not an error worth a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != DROPPED_ON_PURPOSE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m providers.fake_upstream",
        description="Fake OpenAI/Anthropic/Gemini/DeepSeek upstream with fault injection (POST /__control).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=5,
        help="seconds an idle keep-alive connection stays open (uvicorn's default, 5)",
    )
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="off",
        access_log=False,
        log_level=args.log_level,
        server_header=False,
        date_header=False,
        backlog=4096,
        timeout_keep_alive=args.timeout_keep_alive,
    )
    logging.getLogger("uvicorn.error").addFilter(_HideInjectedDisconnects())
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
