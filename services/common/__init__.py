"""What every part of the mesh shares: job states, RPC conventions, names, nameko extensions."""
