# socialmae_rt: make setup | demo | test | info
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test info clean-venv

setup: $(STAMP)

# Re-runs only when the dependency files change; otherwise `make setup` returns at once.
$(STAMP): pyproject.toml constraints.txt setup.py scripts/install_system_deps.sh
	scripts/install_system_deps.sh
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=77"
	$(VPY) -m pip install --quiet -c constraints.txt -e ".[ros,dev]"
	$(VPY) -m pip check
	touch $(STAMP)

test: setup
	$(VPY) -m pytest

# The main job (live streaming perception) arrives with the streaming pipeline; until then this
# shows the model sizes the node will run.
demo: setup
	$(VENV)/bin/socialmae-rt info
	@echo "note: the live perception job ('socialmae-rt run') is not built yet; see README."

info: setup
	$(VENV)/bin/socialmae-rt info

clean-venv:
	rm -rf $(VENV)
