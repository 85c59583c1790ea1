"""Middle layer: steps and the runner. The only code that spawns processes or opens sockets."""
