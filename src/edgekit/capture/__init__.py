"""Sensor capture for week 4: from a board's sensors (or their simulation) to a labelled data set."""
