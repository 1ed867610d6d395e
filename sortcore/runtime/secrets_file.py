"""Secrets in files: the broker password and the page's reset token, read one way; a good
token written by ``sortcore token``. Python 3.7 compatible (the lambda reads the password).

A file is read at most 4 KiB, named in every error and never quoted (its content is secret).
"""

import os
import secrets
from typing import Optional

from ..core.errors import ConfigError

#: A reset token shorter than this is a configuration error: 16 characters of letters and
#: digits are ~95 bits, out of reach of guessing over HTTP, even without the rate limit.
MIN_TOKEN = 16


def _lines(path: str, what: str) -> list:
    try:
        with open(path, "rb") as f:
            data = f.read(4097)
    except OSError as exc:
        raise ConfigError("cannot read the %s file %s: %s" % (what, path, exc.strerror or exc))
    if len(data) > 4096:
        raise ConfigError("the %s file %s is over 4 KiB: not a %s" % (what, path, what))
    try:
        return [line.strip() for line in data.decode("utf-8").splitlines()]
    except UnicodeDecodeError:
        raise ConfigError("the %s file %s is binary or not UTF-8: put one line of text in it" % (what, path))


def read_secret(path: Optional[str], what: str = "password") -> Optional[str]:
    """The first line of a secret file (None without a path); ConfigError naming the file."""
    if not path:
        return None
    lines = _lines(path, what)
    line = lines[0] if lines else ""
    if not line or not line.isprintable():
        raise ConfigError("the %s file %s has no printable first line" % (what, path))
    return line


def read_token(path: str) -> str:
    """The page's reset token: one line of at least :data:`MIN_TOKEN` printable ASCII
    characters without spaces (``sortcore token`` writes a good one)."""
    what = "HTTP token"
    lines = [line for line in _lines(path, what) if line]
    if not lines:
        raise ConfigError("the %s file %s is empty" % (what, path))
    token = lines[0]
    if len(lines) > 1 or not all(33 <= ord(c) < 127 for c in token):
        raise ConfigError("the %s file %s must hold one token: ASCII, no spaces, no control"
                          " characters, no second line" % (what, path))
    if len(token) < MIN_TOKEN:
        raise ConfigError("the %s in %s has %d characters, fewer than %d: write a good one with "
                          "'sortcore token --out %s --force'" % (what, path, len(token), MIN_TOKEN, path))
    return token


def write_token(path: str, force: bool = False) -> str:
    """Write a new random token (43 URL-safe characters, 256 bits) to ``path``, mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError("%s exists: give --force to replace its token" % path)
    except OSError as exc:
        raise ConfigError("cannot write %s: %s" % (path, exc.strerror or exc))
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(token + "\n")
    return token
