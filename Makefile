# The course's commands. `make book` and `make test` set everything up on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
# nbgrader calls `alembic` from PATH; the venv's bin must come first.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: book test grade exercises bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

book: $(VENV)/.installed
	$(VENV)/bin/jupyter-book build . --path-output . -W -n --keep-going

test: $(VENV)/.installed
	$(PY) -m pytest

# Regenerate the student release in exercises/ from the nbgrader source in solutions/.
exercises: $(VENV)/.installed
	$(PY) -m autograder release --all

grade: $(VENV)/.installed
	$(PY) -m autograder sample-class
	$(PY) -m autograder grade --all

clean:
	rm -rf _build

# Grading speed: this pipeline vs stock nbgrader vs bare nbclient (prints ratios; not a test).
bench: $(VENV)/.installed
	$(PY) -m autograder.bench
