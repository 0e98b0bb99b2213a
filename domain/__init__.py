"""Pure business rules of Leadflow: models, scoring, routing. No I/O, nothing of ours imported."""
