"""Everything that runs in Lambda: configuration, the event store, completion logic,
publishing and the work of each handler. ``app.py`` only wires these to Chalice."""
