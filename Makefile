# Two commands do everything: `make demo` (set up if needed, segment a CT slice) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: setup demo test clean-demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	SAM2_BUILD_CUDA=0 $(PY) -m pip install --quiet -e ".[test,monailabel]"
	touch $(STAMP)

# Segments the spinal canal on pydicom's CT_small.dcm (a file that ships inside the pydicom package)
# with a box prompt on the default backbone (LiteMedSAM), writing a NIfTI mask and an overlay PNG.
demo: $(STAMP)
	mkdir -p $(DEMO_OUT)
	$(VENV)/bin/baldsam segment "$$($(PY) -c 'from pydicom.data import get_testdata_file as g; print(g("CT_small.dcm"))')" \
		--box 46,40,72,62 --out $(DEMO_OUT)/ct_small_mask.nii.gz --overlay $(DEMO_OUT)/ct_small_overlay.png --overwrite

test: $(STAMP)
	$(PY) -m pytest -q tests

clean-demo:
	rm -rf $(DEMO_OUT)
