"""LiteMedSAM's prompt encoder and mask decoder trained for clicks (the image encoder frozen): data, training,
shipped weights."""
