"""Offline evaluation: pure numpy metrics, tuning on validation and full-ranking evaluation on test."""
