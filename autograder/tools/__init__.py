"""Maintainers' tools, apart from the four parts: the grading benchmark (``bench``) and the
CPU-vs-GPU agreement of the reference (``agreement``). They may import any part but the CLI;
no part imports them.
"""
