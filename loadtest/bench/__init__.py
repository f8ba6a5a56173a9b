"""The benchmark (``make bench``): ceiling, this stack, the original approach, LitServe and
TorchServe on the same machine, photos and weights. Entry point: loadtest/bench/run_bench.py.
"""
