"""The appliance's live status page: a LiveView the runtime feeds, served over HTTP."""

from .live import LiveView
from .server import HttpHandle, parse_address, read_token_file, start_http

__all__ = ["LiveView", "HttpHandle", "parse_address", "read_token_file", "start_http"]
