"""monitoring-agent: a Linux system-monitoring agent for Prometheus."""

__version__ = "0.1.0"
