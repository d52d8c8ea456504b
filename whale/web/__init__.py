"""What every Whale FastAPI app shares: the error body and handlers, the health and metrics routes."""
