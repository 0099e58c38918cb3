# Everything a fresh clone needs. `make demo` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch/torchvision: these exact releases install from this machine's disk (see README).
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: venv system demo study test test-fast bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# ParaView (pvbatch/pvpython), Xvfb, Fashion-MNIST and Chromium from Debian when missing and we can.
system:
	@sh scripts/install_system.sh

demo: $(STAMP) system
	$(VENV)/bin/lossvista run --preset digits --out runs/demo

# Five architectures on Fashion-MNIST, trained and drawn alike, compared (resumable; docs/study.md).
study: $(STAMP) system
	$(VENV)/bin/lossvista study --preset fashion --out runs/study

test: $(STAMP) system
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not paraview and not slow"

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs build *.egg-info
