"""CIFAR-10 / Fashion-MNIST training utilities for rfcheck designs (data, augmentation, training loop)."""
