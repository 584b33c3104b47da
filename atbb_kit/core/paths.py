"""Where the kit's own files are: the one place that knows the package sits two folders below the root."""

from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[2]
