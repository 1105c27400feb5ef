"""The gateway renders JSON with the project's money-exact encoder."""

from config.rendering import dumps

__all__ = ["dumps"]
