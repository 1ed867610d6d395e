"""A small disk to fill: a 2 MB tmpfs (root only), for the disk-full tests."""

import os
import subprocess

import pytest


def mount_small_disk(where):
    """Mount a 2 MB tmpfs on ``where``; skip the test where mounting is not allowed."""
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % done.stderr.decode().strip())
    return where


def unmount(where):
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder):
    """Write a file until the disk is full; return its path."""
    path = folder / "filler"
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path
