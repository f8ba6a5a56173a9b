"""Peer servers for the benchmark; they run in .venv-bench, not in the stack's venv."""
