"""Disruptions of a predictor running on this machine, under a supervisor that restarts it."""
