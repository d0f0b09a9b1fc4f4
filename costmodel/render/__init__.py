"""Turning values into text for people: numbers with their units, and escaping untrusted
text for HTML and LaTeX."""
