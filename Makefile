# The two commands a new user runs (see README.md): `make demo` and `make test`.
# Each creates .venv and installs what it needs; nothing else must be set up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test agent-show bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# `make demo PORT=8001 ADDR=0.0.0.0` moves the server.
demo: $(STAMP)
	$(BIN)/python manage.py demo $(if $(PORT),--port $(PORT)) $(if $(ADDR),--addr $(ADDR))

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

agent-show: $(STAMP)
	$(BIN)/fleet-agent show

bench: $(STAMP)
	$(BIN)/python bench/agent_collect.py

clean:
	rm -rf $(VENV) .pytest_cache
