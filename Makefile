# pilotopt: `make demo` and `make test` each work on a fresh clone (they create .venv first).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export MPLBACKEND := Agg

.PHONY: setup browser ros ssh arm64-target demo test test-fast bench docs docs-images clean

setup: $(STAMP)

# torch first, pinned to the CPU build, so nothing later can pull the multi-GB CUDA wheels.
$(STAMP): pyproject.toml edge/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet "torch==2.13.0+cpu"
	$(PIP) install --quiet -e ./edge
	$(PIP) install --quiet -e ".[ml,dev,ray,search,mlflow,docs]"
	$(PIP) check
	touch $(STAMP)

# The main job on the built-in default: data, both baselines, every technique, offline and
# closed-loop evaluation, report (quick profile: < 20 minutes on 2 cores). Rerunning reuses it all.
demo: setup
	$(VENV)/bin/pilotopt run --out out/demo
	@echo "open out/demo/report/report.html"

# Headless Chromium + chromedriver for the report.html browser test (Debian packages; needs root).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver; }; \
	fi

# A real ROS 1 master and rospy for the ROS node / simulator bridge test (tests/test_ros.py; Debian
# packages, needs root). The venv's Python cannot import them directly: the node and the bridge add
# /usr/lib/python3/dist-packages at the end of sys.path when `import rospy` fails.
ros:
	@if ! command -v roscore >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ros-core python3-rospy \
			python3-sensor-msgs python3-geometry-msgs \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			ros-core python3-rospy python3-sensor-msgs python3-geometry-msgs; }; \
	fi

# A real OpenSSH server for the target-device tests (tests/test_targets.py starts its own sshd on a
# loopback port with keys it makes, and stops it; nothing listens otherwise). Debian package, needs root.
ssh:
	@if [ ! -x /usr/sbin/sshd ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			openssh-server openssh-client; }; \
	fi

# An emulated arm64 (aarch64) device for the edge package: Debian bookworm arm64 python3.11 under QEMU user
# mode (no binfmt_misc needed) with aarch64 wheels of the pins, in ARM64_TARGET (default .arm64-target);
# its python is ARM64_TARGET/python (`ARM64_TARGET/python -m pilotopt_edge.cli check DIR`). Debian packages,
# needs root; not part of `test`. Rerunning only rechecks it. scripts/arm64_target.sh says more.
ARM64_TARGET ?= .arm64-target
arm64-target: setup
	@if [ ! -x /usr/bin/qemu-aarch64-static ] || [ ! -x /usr/sbin/debootstrap ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static debootstrap \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			qemu-user-static debootstrap; }; \
	fi
	scripts/arm64_target.sh $(ARM64_TARGET)

# both cores, whole files per worker (module fixtures are built once), costliest files first
# (tests/conftest.py COSTLIEST_FIRST, kept in that order by --no-loadscope-reorder)
test: browser ros ssh setup
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast: setup
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"

bench: setup
	$(VENV)/bin/pilotopt bench sim --out out/bench_sim.json

# The documentation site (mkdocs.yml, docs/), built strictly into site/: a broken link or anchor, or
# a page missing from the nav, fails. The hook scripts/docs_gen.py generates the CLI reference, the
# technique settings and the API reference from the code at build time. tests/test_docs.py runs the
# same build, so `make test` does too.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
	@echo "open site/index.html"

# The report's decision figure and robustness heatmap of a finished run (default out/demo, from
# `make demo`) copied into docs/img/, where the README and the site show them; RUN=DIR for another.
RUN ?= out/demo
docs-images: setup
	$(PY) scripts/docs_images.py --run $(RUN)

clean:
	rm -rf $(VENV) out .pytest_cache site
