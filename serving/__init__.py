"""Past one machine: the engine as a Ray Serve deployment (serving/deployment.py), and the
front door's side of it, an object that answers as an engine does (serving/remote.py)."""
