"""Errors that several modules raise, so that none has to import another just for its exception."""


class WeightsUnavailable(FileNotFoundError):
    """Pretrained weights (VGG, Inception, LPIPS) are not cached and could not be downloaded."""
