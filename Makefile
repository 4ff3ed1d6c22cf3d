# The two commands: `make book` (render the executed book) and `make test` (everything).
# Both create .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stad-installed
JB     := $(BIN)/jupyter-book
# Quick profile unless the caller says otherwise (the book is rendered on a CPU).
export STAD_PROFILE ?= quick

.PHONY: book test lint student data clean help install

help:
	@echo "make book     render the book, every chapter executed, into _build/html"
	@echo "make test     unit tests, notebook tests, strict book build, lint, notebook check"
	@echo "make lint     ruff and the output-free notebook check only"
	@echo "make student  student copies of the notebooks (solutions removed) into student/"
	@echo "make data     generate the embedded textures dataset into data/"
	@echo "make clean    remove _build and student/"

install: $(STAMP)

# pip (not uv/poetry): torch then comes from this machine's disk when it is there.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

data: $(STAMP)
	$(BIN)/python -m stad_utils data

book: data
	STAD_HEADLESS=1 $(JB) build .
	@echo "Open _build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/nbstripout --verify notebooks/*.ipynb

test: data lint
	$(BIN)/python -m pytest --durations=12

student: $(STAMP)
	$(BIN)/python tools/make_student_copies.py --out student notebooks/*.ipynb

clean:
	rm -rf _build student
