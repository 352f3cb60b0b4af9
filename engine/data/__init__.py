"""Datasets: a randomized Fourier series (fourier.py) and MNIST (mnist.py)."""
