# socialmae_rt: make setup | demo | test | bench | info
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test info clean-venv

# ROS interface packages built into the venv: ours, and test copies of the hri_msgs and
# audio_common_msgs types we use (a robot's ROS install brings the real ones).
INTERFACES := socialmae_rt_msgs tests/interfaces/hri_msgs tests/interfaces/audio_common_msgs
INTERFACE_STAMP := $(VENV)/.interfaces-stamp

setup: $(STAMP) $(INTERFACE_STAMP)

# Re-runs only when the dependency files change; otherwise `make setup` returns at once.
$(STAMP): pyproject.toml constraints.txt setup.py scripts/install_system_deps.sh
	scripts/install_system_deps.sh
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=77,<80"
	$(VPY) -m pip install --quiet -c constraints.txt -e ".[ros,ros-msgs,dev,int8,triton,triton-server]"
	$(VPY) -m pip check
	touch $(STAMP)

# Rebuilt only when a package's files change (scripts/build_interfaces.py also checks each one).
$(INTERFACE_STAMP): $(STAMP) scripts/build_interfaces.py $(shell find $(INTERFACES) -type f)
	$(VPY) scripts/build_interfaces.py $(INTERFACES)
	touch $(INTERFACE_STAMP)

# Two processes: the training tests (worker processes, torchrun) ran into a crash of the one
# pytest process (heap corruption while it waited on a child; 3 of 3 runs on a Zen 3 EPYC, cause
# not found) once the rest of the suite had loaded MediaPipe, OpenVINO, ROS 2 and ONNX Runtime.
test: setup
	$(VPY) -m pytest --ignore=tests/training
	$(VPY) -m pytest tests/training

SAMPLE := outputs/sample.mp4
DEMO_ARGS ?=

$(SAMPLE): | setup
	$(VPY) -m socialmae_rt.media.sample $(SAMPLE)

# The live demo on the sample clip (no camera needed): a window when there is a display, else
# drawn headless into outputs/demo.mp4. Add flags with DEMO_ARGS, e.g.
# make demo DEMO_ARGS="--weights ft.pth" or "--model small". A webcam: socialmae-rt demo --camera 0
demo: setup $(SAMPLE)
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  $(VENV)/bin/socialmae-rt demo --source $(SAMPLE) --output outputs/demo.jsonl $(DEMO_ARGS); \
	else \
	  echo "no display: drawing the demo headless into outputs/demo.mp4"; \
	  $(VENV)/bin/socialmae-rt demo --source $(SAMPLE) --headless --record outputs/demo.mp4 --output outputs/demo.jsonl $(DEMO_ARGS); \
	fi

# The README's screenshot, drawn by the demo itself from the sample clip (17 s in: the timeline
# holds the face, the stretch without it and the face again).
docs/demo.png: | setup $(SAMPLE)
	$(VENV)/bin/socialmae-rt demo --source $(SAMPLE) --headless --backend torch --snapshot $@ --snapshot-at 17.2 --duration 17.5

# Backends x model sizes (table, outputs/bench.json + .png), then the pipeline around the model.
bench: setup $(SAMPLE)
	$(VENV)/bin/socialmae-rt bench --json outputs/bench.json
	$(VENV)/bin/socialmae-rt bench-pipeline --source $(SAMPLE)

info: setup
	$(VENV)/bin/socialmae-rt info

clean-venv:
	rm -rf $(VENV)
