"""The embedded demo upstream: a deterministic fake of the v1 and v2 case APIs (see `data.py`)."""

from gateway.demo.app import create_app
from gateway.demo.data import DEMO_NOW

DEMO_TOKEN = "demo-token"  # sees every team; acts as the busiest assignee
DEMO_TOKEN_2 = "demo-token-2"  # sees the first team only

__all__ = ["DEMO_NOW", "DEMO_TOKEN", "DEMO_TOKEN_2", "create_app"]
