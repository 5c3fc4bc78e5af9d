"""Activities that talk to Temporal itself: reaching the single-writer workflows."""
