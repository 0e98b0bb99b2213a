"""Pure Block Kit builders: data in, message out, no I/O."""
