"""The emulated board (work in progress)."""
