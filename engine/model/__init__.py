"""CLIP through open_clip, with the visual adapters and the per-task CoOp text prompts."""
