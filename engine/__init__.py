"""The SECA training engine: continual learning with a frozen CLIP, adapters and text prompts.

Imports torch and open_clip; never Textual, Typer or SQLite. Its only channel out is the run dir.
"""
