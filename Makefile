# The two fresh-machine commands from the README, and the fast test loop.
.PHONY: demo test setup fast
PYTHON ?= .venv/bin/python

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/sortcore demo

test:
	bash scripts/test.sh

# The fast loop (README, Layout): one process, no MXNet, OpenCV, ONNX Runtime, browser, broker or
# long test (tests/conftest.py, --fast); after `make setup`. CI runs `make test`, everything.
fast:
	$(PYTHON) -m pytest --fast -q -p no:xdist -p no:anyio
