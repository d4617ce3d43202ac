# The course's commands. `make book` and `make test` set everything up on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
# nbgrader calls `alembic` from PATH; the venv's bin must come first.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: book test grade exercises kits bench clean system-packages

# Debian packages the tests use: Chromium (browser tests), a PostgreSQL server (gradebook test),
# Debian's python3 with venv (the grader tested as an ordinary user). Installed with apt when
# run as root; otherwise the one command to run is printed.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	/usr/bin/python3 -c 'import venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	for tool in unshare nsenter setpriv runuser; do \
	  command -v $$tool >/dev/null 2>&1 || missing="$$missing util-linux"; done; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$$(echo $$missing)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing system packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

book: $(VENV)/.installed
	$(VENV)/bin/jupyter-book build . --path-output . -W -n --keep-going

test: $(VENV)/.installed system-packages
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# Regenerate the student release in exercises/ from the nbgrader source in solutions/.
exercises: $(VENV)/.installed
	$(PY) -m autograder release --all
	$(PY) -m autograder kits --all

# The student kits (_build/kits/<a>.zip) and the precomputed visible checks; `make book` makes them too.
kits: $(VENV)/.installed
	$(PY) -m autograder kits --all

grade: $(VENV)/.installed
	$(PY) -m autograder sample-class
	$(PY) -m autograder grade --all

clean:
	rm -rf _build

# Grading speed: this pipeline vs stock nbgrader vs bare nbclient (prints ratios; not a test).
bench: $(VENV)/.installed
	$(PY) -m autograder.tools.bench
