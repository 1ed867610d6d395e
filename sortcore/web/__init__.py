"""The appliance's live status page.

``sortcore.web.live.LiveView`` is what the runtime feeds (no web code in it);
``sortcore.web.server.start_http`` serves it. Nothing is imported here, so a
process that runs without ``--http`` never loads the HTTP server.
"""
