"""The package's version, in one place (read by `extractor.__version__`, the CLI and telemetry)."""

__version__ = "0.1.0"
"""The package's version."""
