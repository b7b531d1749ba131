"""Local runtime: runs the whole pipeline on one machine (never deployed)."""
