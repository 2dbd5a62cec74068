"""Datasets in their real on-disk formats, and the class-incremental task plan built over them."""
