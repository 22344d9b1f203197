"""Reports: one model built from any result, and its writers (JSON, JUnit, Markdown, HTML,
SVG, the text transcript).  Writers read results; they never run anything."""
