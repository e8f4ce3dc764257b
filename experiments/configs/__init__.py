"""Experiment configs: `--config=experiments/configs/NAME.py[:ARG]`, see default.py."""
