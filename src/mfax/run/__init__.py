"""The top layer: what a user runs. Training configuration, run directories, the training
driver, plots, trackers and the ``mfax`` command line. Nothing below imports it."""
