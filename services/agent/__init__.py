"""The agent of one resource machine: per-machine services, stages and process control."""
