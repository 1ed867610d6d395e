"""sortcore: count socks and pairs from a noisy sock-classifier stream."""

__version__ = "0.1.0"
