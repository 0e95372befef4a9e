"""`facekeypoints serve`: the service (model, detector, limits, deadlines; no web framework),
the HTTP app with its middleware, and the Gradio page mounted on it. Needs the `serve` extras."""
