"""Benchmarks of rtm (make bench); measured, never asserted."""
