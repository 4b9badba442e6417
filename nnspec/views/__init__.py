"""Views of a compiled spec for people: the summary table, diagrams (mermaid, dot, SVG), the
catalogue's documentation and the locked YAML."""
