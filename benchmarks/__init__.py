"""The benchmarks: each module measures one claim of the project and writes its record (with the commit, device and
command that produced it) into ``benchmarks/results/``. Run one from the repository root as a module::

    python -m benchmarks.<name> [--variant LABEL] [--allow-dirty] [options]   # --help lists its options

Click policies and heads (2D dev images, validation images of the training split for tuning):

* ``eval_baselines``: LiteMedSAM with oracle clicks, box only / box + clicks / click + clicks, per dev domain.
* ``eval_heads_dev``: every click policy with the shipped Bayesian heads on dev data: mIoU after each interaction, NoC.
* ``bald_paired_dev``: BALD against every other policy on the full dev folders, paired bootstrap intervals over images.
* ``bald_diagnostics``: where BALD's clicks land (on an error? near the boundary?), calibration, error detection.
* ``tune_footprint``: the bald / entropy click rule's footprint, gate and exclusion, chosen on validation images.
* ``laplace_ablation``: the last-layer Laplace's Hessian structure, prior tuning and predictive, by BALD's mIoU.
* ``click_latency``: what one BALD click costs, as a ratio to a plain decoder call, with its stages timed apart.
* ``active_learning_sim``: MONAI Label's active-learning loop simulated on a training pool: does the ``bald`` or
  ``usam`` strategy reach ``random``'s dev mIoU with fewer labelled images?

Decoder, encoder, UncertainSAM:

* ``decoder_dev``: the click-trained decoder against LiteMedSAM's original one on the full dev folders.
* ``box_alone_val``: who answers a box alone, the head or the decoder, chosen on a head's validation images.
* ``encoder_throughput``: the image encoder's runtimes (OpenVINO) against the fp32 eager PyTorch baseline.
* ``eval_usam_dev``: UncertainSAM heads: how well the predicted IoU ranks masks, what the stop rule saves.
* ``usam_cost``: what UncertainSAM's quality costs per call on CPU.

Volumes and deployment:

* ``propagation_dev``: how far one box propagates on the dev volumes, LiteMedSAM alone.
* ``small_structure_train``: small structures on training volumes (hippocampus): stop-rule variants and the
  click-trained decoder for box prompts, Dice and slices missed.
* ``small_structure_val``: small structures on a decoder's validation volumes: each decoder and stop rule after one
  box, Dice and slices missed (where ``hippocampus_v1``'s stop rule was chosen).
* ``correction_val``: corrections on validation volumes: a re-propagation rejected on a slice clears or keeps the
  earlier results beyond it, Dice after every oracle click.
* ``eval_volumes_dev``: Dice against clicks on the dev volumes for the volume click policies.
* ``cli_latency``: ``baldsam segment`` on a picture and the first ``baldsam suggest`` on a volume, command to
  answer, and the import time before them.
* ``monailabel_load``: concurrent infer requests on one MONAI Label server: correct answers, p50 / p95 latency.
* ``monailabel_soak``: 5 clients x 20 mixed 2D/3D requests, twice: correct answers, p50 / p95 per kind, the server's
  memory against its embedding cache budget.

Shared modules (not benchmarks): ``results_io`` (result file names, provenance, the clean-tree check, the common
options), ``timing`` (the CPU cost benchmarks' scaffolding), ``head_validation`` (a head's validation split),
``bald_targets`` (issue 17's targets judged from a ``bald_paired_dev`` record) and ``docs_results`` (the docs' results pages, rendered from the records; also an MkDocs hook), with ``docs_pages`` (one
renderer per benchmark), ``docs_markdown`` (a record's fields as Markdown) and ``docs_performance`` (the speed page).

Each benchmark writes ``benchmarks/results/<name>[_<variant>]_<device>.json`` (and its chart as ``.png``), the
variant from ``--variant`` or its options, the device ``cpu`` or the GPU's model (``h100``); it refuses to run from a
tree with uncommitted changes unless ``--allow-dirty``. ``results_io``'s docstring gives both rules.
"""
